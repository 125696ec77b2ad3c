import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { AppError } from '../errors.js';
import type { AttributesAdapter, PathOutcome, Target, Within } from './adapter.js';
import { mapLimited } from '../concurrency.js';
import { FLAG_LANES, splitForLanes } from './batch.js';
import {
  encodeRecords,
  outcomeOf,
  parseHelperOutput,
  recordKindOf,
  relativeWithin,
  type HelperAnswer,
  type HelperRecord,
} from './protocol.js';

// Shipped in the package (package.json "files"); the same path from src/ and from dist/.
const HELPER = fileURLToPath(new URL('../../libexec/xo-immutable-flags.pl', import.meta.url));
// Only PATH (to find perl) passes from the daemon's environment: no PERL5LIB or PERL5OPT reaches the helper.
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
// A just-written file on XFS with SELinux sometimes refuses its first change: a failed path gets this many runs.
const TRIES = 3;
const RETRY_DELAY_MS = 25;
// Outcomes that another try cannot change (what the path is, not how the filesystem answered).
// EKIND (a file where a directory was checked, or the reverse) and EFOREIGN (a directory unit holding what XO never
// writes) are final here: the daemon decides the unit again at its next reconcile.
const FINAL_CODES = new Set([
  'ENOENT',
  'ENOTSUP',
  'ECONFINE',
  'ECHANGED',
  'ELINKS',
  'EINVAL',
  'ENOTDIR',
  'EROFS',
  'EKIND',
  'EFOREIGN',
  'EMACHINE',
]);
// One line of at most about 700 bytes per record (the helper cuts messages), 4096 records a run.
const MAX_OUTPUT = 8 * 1024 * 1024;

type Operation = 'set' | 'clear' | 'get';

// The helper's ioctl numbers and O_PATH are those of x86_64 and arm64.
const ARCHITECTURES = new Set(['x64', 'arm64']);

// The tests run the helper with perl's warnings on (XO_IMMUTABLE_FLAGS_WARNINGS=1: the helper sets $^W, as -w does,
// and any warning fails the call), and force its component walk where the kernel has openat2
// (XO_IMMUTABLE_FLAGS_WALK=1), so both ways of opening are tested.
const HELPER_SWITCHES = ['XO_IMMUTABLE_FLAGS_WARNINGS', 'XO_IMMUTABLE_FLAGS_WALK'] as const;

function helperEnvironment(): Record<string, string> {
  return Object.fromEntries(HELPER_SWITCHES.filter((name) => process.env[name] === '1').map((name) => [name, '1']));
}

async function runHelper(
  operation: Operation,
  within: Within,
  records: readonly HelperRecord[],
): Promise<Map<number, HelperAnswer>> {
  if (!ARCHITECTURES.has(process.arch))
    throw new AppError('FLAG_HELPER_FAILED', `The immutable-flag helper does not support ${process.arch}`, {
      value: process.arch,
      hint: 'run the daemon on x86_64 or arm64 (aarch64)',
    });
  const result = await execa('perl', [HELPER, operation, within.root, within.realRoot], {
    env: { LC_ALL: 'C', LANG: 'C', PATH: process.env.PATH ?? DEFAULT_PATH, ...helperEnvironment() },
    extendEnv: false,
    reject: false,
    input: encodeRecords(records),
    stripFinalNewline: false,
    maxBuffer: MAX_OUTPUT,
  });
  if (result.failed && result.exitCode === undefined && result.signal === undefined && !result.isMaxBuffer) {
    const missing = result.code === 'ENOENT';
    throw new AppError(missing ? 'PERL_MISSING' : 'FLAG_HELPER_FAILED', `Cannot run perl: ${result.shortMessage}`, {
      value: HELPER,
      hint: missing
        ? 'install perl (apt-get install perl-base), which runs the helper that changes the immutable flag'
        : 'the system could not start a process (out of memory, processes or file descriptors?); ' +
          'the daemon tries again',
      cause: result,
    });
  }
  const warned = process.env.XO_IMMUTABLE_FLAGS_WARNINGS === '1' ? String(result.stderr ?? '').trim() : '';
  if (warned !== '')
    throw new AppError('FLAG_HELPER_FAILED', `The flag helper warned under perl -w: ${warned.slice(0, 2000)}`, {
      value: HELPER,
      hint: 'fix the helper (the tests run it with XO_IMMUTABLE_FLAGS_WARNINGS=1)',
    });
  const output = parseHelperOutput(String(result.stdout ?? ''));
  if (output.anchor !== undefined) {
    const refused: HelperAnswer = { status: 'failed', ...output.anchor };
    return new Map(records.map((_, i) => [i, refused]));
  }
  // A run that died part way (killed, or perl itself failed: its stderr says why) leaves the rest unanswered.
  if (!output.complete) {
    const why = String(result.stderr ?? '').trim() || (result.shortMessage ?? 'the helper stopped');
    for (let i = 0; i < records.length; i++)
      if (!output.answers.has(i)) output.answers.set(i, { status: 'failed', code: 'EUNKNOWN', message: why });
  }
  return output.answers;
}

// The only place that changes or reads the immutable flag: a helper of ours walks each path from a held descriptor
// of the remote's root without following links and calls the ioctl on what it opened (docs/security.md, "rename
// race"). Many paths per run, one outcome per path.
export class IoctlAdapter implements AttributesAdapter {
  async setImmutable(within: Within, targets: readonly Target[], immutable: boolean): Promise<PathOutcome[]> {
    const outcomes = new Map<string, PathOutcome>();
    const batches: Target[][] = [];
    for (const recursive of [false, true]) {
      const mine = targets.filter((t) => t.recursive === recursive);
      const byPath = new Map(mine.map((t) => [t.path, t]));
      for (const paths of splitForLanes([...byPath.keys()], recursive)) batches.push(paths.map((p) => byPath.get(p)!));
    }
    await mapLimited(batches, FLAG_LANES, async (batch) => {
      for (const outcome of await this.#setBatch(within, batch, immutable)) outcomes.set(outcome.path, outcome);
    });
    return targets.map((t) => outcomes.get(t.path) ?? outcomeOf(t.path, undefined));
  }

  async #setBatch(within: Within, batch: readonly Target[], immutable: boolean): Promise<PathOutcome[]> {
    const outcomes = new Map<string, PathOutcome>();
    let pending: { target: Target; record: HelperRecord }[] = [];
    for (const target of batch) {
      const relative = relativeWithin(within, target.path);
      if (relative === undefined)
        outcomes.set(target.path, {
          path: target.path,
          status: 'failed',
          code: 'ECONFINE',
          message: `${target.path} is not plainly below ${within.root}: not touched`,
        });
      else pending.push({ target, record: { relative, kind: recordKindOf(target), ino: target.ino } });
    }
    for (let attempt = 1; attempt <= TRIES && pending.length > 0; attempt++) {
      if (attempt > 1) await sleep(RETRY_DELAY_MS * (attempt - 1));
      const answers = await runHelper(
        immutable ? 'set' : 'clear',
        within,
        pending.map((p) => p.record),
      );
      const again: typeof pending = [];
      pending.forEach((p, i) => {
        const outcome = outcomeOf(p.target.path, answers.get(i));
        outcomes.set(p.target.path, outcome);
        if (outcome.status === 'failed' && !FINAL_CODES.has(outcome.code)) again.push(p);
      });
      pending = again;
    }
    return batch.map((t) => outcomes.get(t.path)!);
  }

  async isImmutable(within: Within, paths: readonly string[]): Promise<Map<string, boolean | undefined>> {
    const found = new Map<string, boolean | undefined>(paths.map((p) => [p, undefined]));
    const inside = paths.flatMap((p) => {
      const relative = relativeWithin(within, p);
      return relative === undefined ? [] : [{ path: p, record: { relative, kind: '?' as const } }];
    });
    const byPath = new Map(inside.map((i) => [i.path, i.record]));
    await mapLimited(splitForLanes([...byPath.keys()], false), FLAG_LANES, async (batch) => {
      const answers = await runHelper(
        'get',
        within,
        batch.map((p) => byPath.get(p)!),
      );
      batch.forEach((p, i) => {
        const status = answers.get(i)?.status;
        found.set(p, status === 'on' ? true : status === 'off' ? false : undefined);
      });
    });
    return found;
  }
}
