import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { AppError } from '../errors.js';
import type { AttributesAdapter, PathOutcome, Target } from './adapter.js';
import { mapLimited } from '../concurrency.js';
import {
  CHATTR_LANES,
  ChattrErrors,
  classifyChattrMessage,
  parseLsattr,
  splitForLanes,
  splitIntoBatches,
} from './batch.js';

// Messages are parsed, so they must not be translated.
const ENV = { LC_ALL: 'C', LANG: 'C' };
// A just-written file on XFS with SELinux sometimes refuses its first chattr: a path gets this many tries on its own.
const SINGLE_PATH_TRIES = 3;
const RETRY_DELAY_MS = 25;
// What is kept of a run's stdout (lsattr's answers, bounded by the batch's arguments). chattr's stderr is not kept
// at all: it is read a line at a time into one message per path, as a recursive batch can print a line for every bad
// entry inside a directory, without limit.
const MAX_OUTPUT = 1024 * 1024;

interface Run {
  exitCode: number;
  stdout: string;
  stderr: string;
}

async function run(command: 'chattr' | 'lsattr', args: readonly string[], errors?: ChattrErrors): Promise<Run> {
  const subprocess = execa(command, args, {
    env: ENV,
    reject: false,
    stdin: 'ignore',
    stripFinalNewline: false,
    maxBuffer: MAX_OUTPUT,
    buffer: { stderr: errors === undefined },
  });
  if (errors !== undefined) for await (const line of subprocess.iterable({ from: 'stderr' })) errors.add(line);
  const result = await subprocess;
  // Killed (a signal, or more output than kept) is a failed run of these paths, never a failed round.
  if (result.failed && result.exitCode === undefined && result.signal === undefined && !result.isMaxBuffer) {
    const missing = result.code === 'ENOENT';
    throw new AppError(missing ? 'CHATTR_MISSING' : 'CHATTR_FAILED', `Cannot run ${command}: ${result.shortMessage}`, {
      value: command,
      hint: missing
        ? 'install e2fsprogs (apt-get install e2fsprogs), which provides chattr and lsattr'
        : 'the system could not start a process (out of memory, processes or file descriptors?); ' +
          'the daemon tries again',
      cause: result,
    });
  }
  const killed = result.exitCode === undefined ? `${command} was stopped (${result.shortMessage})` : '';
  return {
    exitCode: result.exitCode ?? 1,
    stdout: String(result.stdout ?? ''),
    stderr: killed === '' ? String(result.stderr ?? '') : killed,
  };
}

// The only place that spawns chattr and lsattr: many paths per spawn, one outcome per path.
export class ChattrAdapter implements AttributesAdapter {
  async setImmutable(targets: readonly Target[], immutable: boolean): Promise<PathOutcome[]> {
    const batches: { paths: string[]; recursive: boolean }[] = [];
    for (const recursive of [false, true]) {
      const paths = targets.filter((t) => t.recursive === recursive).map((t) => t.path);
      for (const batch of splitForLanes(paths, recursive)) batches.push({ paths: batch, recursive });
    }
    return (
      await mapLimited(batches, CHATTR_LANES, (batch) => this.#setBatch(batch.paths, batch.recursive, immutable))
    ).flat();
  }

  async #setBatch(batch: readonly string[], recursive: boolean, immutable: boolean): Promise<PathOutcome[]> {
    const flags = [...(recursive ? ['-R'] : []), immutable ? '+i' : '-i', '--'];
    const errors = new ChattrErrors(batch);
    const result = await run('chattr', [...flags, ...batch], errors);
    if (result.exitCode === 0) return batch.map((path) => ({ path, status: 'ok' }));
    // A failed run whose every line names its path: those paths are tried alone, the others are done. Otherwise
    // (a line naming none, or chattr stopped before the end) no path's outcome is known: each is tried alone.
    // A name with a newline cannot be told apart in chattr's messages: such paths always get a run of their own.
    const { failures, understood } = errors.result();
    const complete = understood && result.stderr === '';
    const suspects = complete ? new Set(failures.map((f) => f.path)) : new Set(batch);
    for (const p of batch) if (p.includes('\n')) suspects.add(p);
    const outcomes: PathOutcome[] = [];
    for (const path of batch) {
      outcomes.push(suspects.has(path) ? await this.#setOne(path, flags) : { path, status: 'ok' });
    }
    return outcomes;
  }

  async #setOne(path: string, flags: readonly string[]): Promise<PathOutcome> {
    let message = '';
    for (let attempt = 1; attempt <= SINGLE_PATH_TRIES; attempt++) {
      const errors = new ChattrErrors([path]);
      const result = await run('chattr', [...flags, path], errors);
      if (result.exitCode === 0) return { path, status: 'ok' };
      const { failures, unplaced } = errors.result();
      const first = failures[0];
      // Only the path itself vanishing is not an error; a file vanishing inside a tree leaves the tree half done.
      if (first?.code === 'ENOENT' && first.message.endsWith(` ${path}`)) return { path, status: 'vanished' };
      message = [first?.message, ...unplaced, result.stderr].filter((m) => m !== undefined && m !== '').join('; ');
      if (attempt < SINGLE_PATH_TRIES) await sleep(RETRY_DELAY_MS * attempt);
    }
    return { path, status: 'failed', code: classifyChattrMessage(message), message };
  }

  async isImmutable(paths: readonly string[]): Promise<Map<string, boolean | undefined>> {
    const found = new Map<string, boolean | undefined>();
    // lsattr prints one line per path: a name with a newline is asked about alone, its whole output one answer.
    for (const p of paths.filter((p) => p.includes('\n'))) {
      const result = await run('lsattr', ['-d', '--', p]);
      found.set(
        p,
        result.exitCode === 0 ? result.stdout.slice(0, result.stdout.indexOf(' ')).includes('i') : undefined,
      );
    }
    for (const batch of splitIntoBatches(paths.filter((p) => !p.includes('\n')))) {
      const result = await run('lsattr', ['-d', '--', ...batch]);
      const parsed = parseLsattr(result.stdout);
      for (const p of batch) found.set(p, parsed.get(p));
    }
    return found;
  }
}
