import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { AppError } from '../errors.js';
import type { Within } from './adapter.js';
import { FLAG_LANES } from './batch.js';
import { AnswerChunks, encodeRequest, type HelperRecord, type Operation } from './protocol.js';

// Shipped in the package ("files"), the same path from src/ and dist/. Only PATH (to find perl) passes from the
// daemon's environment to it: no PERL5LIB or PERL5OPT.
const HELPER = fileURLToPath(new URL('../../libexec/xo-immutable-flags.pl', import.meta.url));
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
// Test switches: perl's warnings on, any warning failing the call (WARNINGS); the component walk even where the kernel
// has openat2 (WALK); a stop in the middle of a request (STOP), or of a directory unit (STOP_INSIDE).
const HELPER_SWITCHES = ['WARNINGS', 'WALK', 'STOP', 'STOP_INSIDE'].map((name) => `XO_IMMUTABLE_FLAGS_${name}`);
// The helper's ioctl numbers and O_PATH are those of x86_64 and arm64.
const ARCHITECTURES = new Set(['x64', 'arm64']);

// A helper that writes nothing for this long is stuck (a disk that stopped answering): it is killed and what it did
// not answer is reported failed. It writes at least once a second while it works, also inside a large directory unit,
// so only one flag change waiting this long (the write-back of a huge file just written) comes near it.
export const STALL_MS = 5 * 60_000;
// An idle helper exits after this long; the daemon's health check reads a flag every 10 s, which keeps one running.
export const IDLE_MS = 30_000;
// One line of at most about 700 bytes per record (the helper cuts messages), 4096 records a request.
const MAX_ANSWER = 8 * 1024 * 1024;
const STDERR_KEPT = 4096;

// What a request got back: the helper's lines up to its end line, or as far as they came before it stopped.
export interface Reply {
  text: string;
  // Why the answer stops short: the helper died (EUNKNOWN, its stderr as the message) or was stuck and killed
  // (ETIMEDOUT). Undefined when it came whole.
  stopped?: { code: 'EUNKNOWN' | 'ETIMEDOUT'; message: string };
}

export interface FlagHelperOptions {
  lanes?: number;
  stallMs?: number;
}

// The environment a helper starts with, and its key: a helper started with another one (a test switched a setting,
// PATH changed) is not used again.
function helperEnvironment(): { env: Record<string, string>; key: string } {
  const env: Record<string, string> = { LC_ALL: 'C', LANG: 'C', PATH: process.env.PATH ?? DEFAULT_PATH };
  for (const name of HELPER_SWITCHES) if (process.env[name] === '1') env[name] = '1';
  return { env, key: JSON.stringify(env) };
}

// cwd /: a helper started from a command run inside the remote must not keep its mount busy.
function spawnHelper(env: Record<string, string>) {
  return execa('perl', [HELPER], { env, extendEnv: false, reject: false, buffer: false, cwd: '/' });
}

interface Pending {
  answer: AnswerChunks;
  resolve: (reply: Reply) => void;
  reject: (error: unknown) => void;
  timer: NodeJS.Timeout;
}

interface Unreffable {
  ref(): void;
  unref(): void;
}

// One running helper: one request at a time. Idle, it keeps nothing alive (a command exits, then the helper with it).
class HelperProcess {
  readonly key: string;
  readonly #child: ReturnType<typeof spawnHelper>;
  readonly #onGone: (helper: HelperProcess) => void;
  #pending: Pending | undefined;
  #gone = false;
  #stderr = '';
  #idle: NodeJS.Timeout | undefined;
  // Settles when the process has exited.
  readonly exited: Promise<void>;

  constructor(env: Record<string, string>, key: string, onGone: (helper: HelperProcess) => void) {
    this.key = key;
    this.#onGone = onGone;
    this.#child = spawnHelper(env);
    const { stdin, stdout, stderr } = this.#child;
    stdout.setEncoding('utf8');
    stderr.setEncoding('utf8');
    stdout.on('data', (chunk: string) => this.#answered(chunk));
    stderr.on('data', (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-STDERR_KEPT);
    });
    // A helper that died takes its pipe with it: what it did not answer is reported when it exits.
    stdin.on('error', () => undefined);
    for (const stream of [stdin, stderr]) (stream as unknown as Unreffable).unref();
    this.#hold(false);
    this.exited = this.#child.then((result) => this.#exited(result));
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get usable(): boolean {
    return !this.#gone;
  }

  send(operation: Operation, within: Within, records: readonly HelperRecord[], stallMs: number): Promise<Reply> {
    clearTimeout(this.#idle);
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => this.#stuck(stallMs), stallMs);
      this.#pending = { answer: new AnswerChunks(), resolve, reject, timer };
      this.#hold(true);
      this.#child.stdin.write(encodeRequest(operation, within, records));
    });
  }

  // Idle from now: exits after `idleMs` unless sent another request.
  rest(idleMs: number): void {
    this.#idle = setTimeout(() => this.end(), idleMs);
    this.#idle.unref();
  }

  // The end of its stdin: it exits once the request in hand, if any, is answered. Until then it keeps this process
  // alive: whoever waits for its exit is not left waiting on a loop with nothing in it.
  end(): void {
    this.#retire();
    this.#hold(true);
    this.#child.stdin.end();
  }

  #answered(chunk: string): void {
    const pending = this.#pending;
    if (pending === undefined) return;
    pending.timer.refresh();
    const whole = pending.answer.push(chunk);
    if (whole !== undefined) return this.#settle({ text: whole });
    if (pending.answer.length <= MAX_ANSWER) return;
    this.#kill();
    this.#settle({
      text: pending.answer.text(),
      stopped: { code: 'EUNKNOWN', message: `the flag helper wrote over ${MAX_ANSWER} bytes for one request: killed` },
    });
  }

  #stuck(stallMs: number): void {
    const text = this.#pending?.answer.text() ?? '';
    this.#kill();
    this.#settle({
      text,
      stopped: {
        code: 'ETIMEDOUT',
        message:
          `the flag helper answered nothing for ${Math.round(stallMs / 1000)} s (a disk that stopped answering?): ` +
          'killed; what it did not answer is tried again at the next reconcile',
      },
    });
  }

  #exited(result: { exitCode?: number; signal?: string; failed: boolean; code?: string; shortMessage?: string }): void {
    this.#retire();
    const pending = this.#pending;
    if (pending === undefined) return;
    if (result.exitCode === undefined && result.signal === undefined) {
      clearTimeout(pending.timer);
      this.#pending = undefined;
      const missing = result.code === 'ENOENT';
      pending.reject(
        new AppError(missing ? 'PERL_MISSING' : 'FLAG_HELPER_FAILED', `Cannot run perl: ${result.shortMessage}`, {
          value: HELPER,
          hint: missing
            ? 'install perl (apt-get install perl-base), which runs the helper that changes the immutable flag'
            : 'the system could not start a process (out of memory, processes or file descriptors?); ' +
              'the daemon tries again',
          cause: result,
        }),
      );
      return;
    }
    const why = this.#stderr.trim() || (result.shortMessage ?? 'the flag helper stopped');
    this.#settle({ text: pending.answer.text(), stopped: { code: 'EUNKNOWN', message: why } });
  }

  #settle(reply: Reply): void {
    const pending = this.#pending;
    if (pending === undefined) return;
    clearTimeout(pending.timer);
    this.#pending = undefined;
    this.#hold(false);
    pending.resolve(reply);
  }

  // SIGKILL, and not waited for: a process stuck on a disk dies only when the disk lets it.
  #kill(): void {
    this.#retire();
    this.#child.kill('SIGKILL');
  }

  #retire(): void {
    if (this.#gone) return;
    this.#gone = true;
    clearTimeout(this.#idle);
    this.#onGone(this);
  }

  // Waiting for an answer keeps the process alive; an idle helper does not.
  #hold(busy: boolean): void {
    for (const handle of [this.#child, this.#child.stdout] as unknown as Unreffable[])
      if (busy) handle.ref();
      else handle.unref();
  }
}

// The flag helpers of one adapter (the daemon's, or a command's): up to FLAG_LANES running, each started when a
// request finds none idle, and a new one started for the next request when one dies or is killed. They hold nothing
// between requests: the remote's root is opened again for each (libexec/xo-immutable-flags.pl).
export class FlagHelpers {
  readonly #lanes: number;
  readonly #stallMs: number;
  readonly #running = new Set<HelperProcess>();
  // Most recently used last: it is used first, so the others go idle and exit.
  readonly #idle: HelperProcess[] = [];
  readonly #waiting: (() => void)[] = [];
  // Helpers told to end (not killed ones: a process stuck on a disk is not waited for).
  readonly #ending = new Set<Promise<void>>();
  #closing = false;

  constructor(options: FlagHelperOptions = {}) {
    this.#lanes = options.lanes ?? FLAG_LANES;
    this.#stallMs = options.stallMs ?? STALL_MS;
  }

  // The process ids of the helpers running now.
  get pids(): number[] {
    return [...this.#running].flatMap((helper) => (helper.pid === undefined ? [] : [helper.pid]));
  }

  async request(operation: Operation, within: Within, records: readonly HelperRecord[]): Promise<Reply> {
    if (!ARCHITECTURES.has(process.arch))
      throw new AppError('FLAG_HELPER_FAILED', `The immutable-flag helper does not support ${process.arch}`, {
        value: process.arch,
        hint: 'run the daemon on x86_64 or arm64 (aarch64)',
      });
    const helper = await this.#take();
    try {
      return await helper.send(operation, within, records, this.#stallMs);
    } finally {
      if (!helper.usable) this.#wake();
      else if (this.#closing) this.#end(helper);
      else {
        helper.rest(IDLE_MS);
        this.#idle.push(helper);
        this.#wake();
      }
    }
  }

  // Ends every helper: idle ones now, and waits for them to exit (nothing of theirs keeps a mount busy after); busy
  // ones once their request is answered, not waited for (one stuck on a disk would hold a stop up to its bound).
  async close(): Promise<void> {
    this.#closing = true;
    for (const helper of [...this.#idle]) this.#end(helper);
    await Promise.all(this.#ending);
  }

  async #take(): Promise<HelperProcess> {
    const { env, key } = helperEnvironment();
    for (;;) {
      for (let i = this.#idle.length - 1; i >= 0; i--)
        if (this.#idle[i]!.key === key) return this.#idle.splice(i, 1)[0]!;
      // Every lane taken, one of them idle with another environment: it gives its lane up.
      const stale = this.#idle[0];
      if (this.#running.size >= this.#lanes && stale !== undefined) this.#end(stale);
      if (this.#running.size < this.#lanes) {
        const helper = new HelperProcess(env, key, (gone) => this.#forget(gone));
        this.#running.add(helper);
        return helper;
      }
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
  }

  #end(helper: HelperProcess): void {
    helper.end();
    const exited = helper.exited.finally(() => this.#ending.delete(exited));
    this.#ending.add(exited);
  }

  #forget(helper: HelperProcess): void {
    this.#running.delete(helper);
    const at = this.#idle.indexOf(helper);
    if (at >= 0) this.#idle.splice(at, 1);
    this.#wake();
  }

  #wake(): void {
    this.#waiting.shift()?.();
  }
}
