import { retryDelay, RETRY_DELAY_MS } from './backoff.js';
import type { LeafFolder } from './context.js';
import { Coverage } from './coverage.js';
import { FolderFacts } from './folder-facts.js';
import { FolderQueue, type Urgency } from './folder-queue.js';
import { RecheckTimers } from './rechecks.js';
import { ProtectionRecord } from './record.js';
import {
  lockRound,
  logRound,
  newRound,
  reconcileIntoRound,
  type Round,
  type RoundDeps,
  type RoundOutcome,
} from './round.js';

export type { Urgency } from './folder-queue.js';
export { MAX_TIMER_MS } from './rechecks.js';

export type SchedulerDeps = RoundDeps;

// Folders reconciled in one round; their units share flag-helper batches. Two rounds are in flight at once (one
// locking, one reconciled), and what they hold is live at each collection, which V8's old generation grows from: half
// of session 10's 512 folders and 4,096 units (docs/performance.md, "Memory (session 11)").
const FOLDERS_PER_ROUND = 256;
// A round stops taking folders once it holds this many units, so a catch-up never holds every request at once.
const UNITS_PER_ROUND = 2048;
// With no round locking, a round is locked once it holds this many units (or nothing else is queued): the first
// batch of a catch-up starts soon, and the next round is reconciled while it locks.
const UNITS_TO_START = 512;

// Turns "this folder changed" hints into rounds (protect/round.ts), and times them: repeated hints for one folder
// coalesce, a folder is looked at again when its round asks, and a folder that fails is tried again later and later.
// Rounds overlap: round N+1 is reconciled (main thread) while round N waits for its sync, the flag helper and its
// completions, and is locked as soon as round N is done; lock batches never overlap, and a folder of the round
// locking is not taken again until that round is settled, so no unit is in two batches at once.
export class ProtectionScheduler {
  // What the rounds did and found, for status and metrics.
  readonly record: ProtectionRecord;
  readonly coverage = new Coverage();
  readonly facts = new FolderFacts();
  readonly #deps: SchedulerDeps;
  readonly #queue = new FolderQueue();
  readonly #rechecks: RecheckTimers;
  #running: Promise<void> | undefined;
  // The folders of the round locking now: they keep their place in the queue until it is done.
  #locking: ReadonlySet<string> = new Set();
  // A round waiting for folders to come, or for the round before it to be locked.
  #waiting: (() => void) | undefined;
  #idleWaiters: (() => void)[] = [];
  // Failures in a row, by folder: the retry delay doubles with each (protect/backoff.ts).
  readonly #failures = new Map<string, number>();
  #stopped = false;

  constructor(deps: SchedulerDeps) {
    this.#deps = deps;
    this.record = new ProtectionRecord(deps.log);
    this.#rechecks = new RecheckTimers(deps.clock, (folder, full) => {
      this.enqueue(folder);
      if (full) this.enqueue(folder, 'scan');
    });
  }

  enqueue(folder: LeafFolder, urgency: Urgency = 'event'): void {
    if (this.#stopped) return;
    this.#queue.add(folder, urgency);
    this.#wake();
    this.#kick();
  }

  // Looks at a folder again at a given time unless an event brings it in first; the earliest request wins. `full`:
  // look at every backup then, proven or not (a retry of a full proof).
  enqueueAt(folder: LeafFolder, at: number, full = false): void {
    if (this.#stopped) return;
    this.#rechecks.schedule(folder, at, full);
  }

  // Folders waiting to be tried again after a failure or to have a json looked at again.
  pendingRechecks(): number {
    return this.#rechecks.size;
  }

  // Folders that failed more than once in a row: they are tried again less often (status and metrics show them).
  backingOff(): number {
    let count = 0;
    for (const failures of this.#failures.values()) if (failures > 1) count++;
    return count;
  }

  forget(folderPath: string): void {
    this.#queue.delete(folderPath);
    this.coverage.forget(folderPath);
    this.#failures.delete(folderPath);
    this.facts.forget(folderPath);
    this.#rechecks.cancel(folderPath);
  }

  // Resolves once every folder queued so far has been reconciled and locked (timers for later rechecks excepted).
  idle(): Promise<void> {
    if (this.#running === undefined && this.#queue.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  // Stops taking work and lets the rounds in flight finish (the one reconciling stops taking folders and locks what
  // it found), so no batch is cut in half.
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#rechecks.clear();
    this.#queue.clear();
    this.#wake();
    await this.#running;
  }

  #wake(): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.();
  }

  #kick(): void {
    if (this.#running !== undefined) return;
    this.#running = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.#drain())
      .catch((err: unknown) => this.#deps.log.error({ err }, 'protection round failed'))
      .finally(() => {
        this.#running = undefined;
        if (this.#queue.size > 0 && !this.#stopped) {
          this.#kick();
          return;
        }
        const waiters = this.#idleWaiters;
        this.#idleWaiters = [];
        for (const resolve of waiters) resolve();
      });
  }

  async #drain(): Promise<void> {
    let locking: Promise<void> | undefined;
    try {
      while (!this.#stopped && (this.#queue.size > 0 || locking !== undefined)) {
        const round = await this.#gather(locking);
        if (round.taken.size > 0) logRound(this.#deps.log, round);
        // One lock batch at a time, in order: a lift or a hold's turn comes between two, never inside one.
        await locking;
        locking = round.taken.size > 0 ? this.#lock(round) : undefined;
      }
    } finally {
      await locking;
    }
  }

  // Reconciles folders into a round while the round before it (`before`) locks, until the round is full, or that one is
  // done and this one holds enough to be worth a batch (or nothing else can be taken).
  async #gather(before: Promise<void> | undefined): Promise<Round> {
    const round = newRound();
    let beforeDone = before === undefined;
    const done = (): void => {
      beforeDone = true;
      this.#wake();
    };
    void before?.then(done, done);
    const busy = (folderPath: string): boolean => round.taken.has(folderPath) || this.#locking.has(folderPath);
    while (!this.#stopped && round.taken.size < FOLDERS_PER_ROUND) {
      const units = round.batch.requests.length;
      if (units >= UNITS_PER_ROUND || (beforeDone && units >= UNITS_TO_START)) break;
      const item = this.#queue.next(busy);
      if (item !== undefined) await reconcileIntoRound(round, item, this.#deps, this);
      else if (beforeDone) break;
      else await new Promise<void>((resolve) => (this.#waiting = resolve));
    }
    return round;
  }

  // Locks a round and times the next looks of its folders; never throws (a failure is logged).
  async #lock(round: Round): Promise<void> {
    this.#locking = round.taken;
    try {
      this.#timeNextLooks(await lockRound(round, this.#deps, this));
    } catch (err) {
      this.#deps.log.error({ err }, 'protection round failed');
    } finally {
      this.#locking = new Set();
    }
  }

  #timeNextLooks({ looked, failed, succeeded }: RoundOutcome): void {
    // Only what a look left waiting keeps a recheck: pending_rechecks counts folders really waiting.
    for (const { folder, full, recheckAt } of looked) {
      this.#rechecks.supersede(folder.path, full);
      if (recheckAt !== undefined) this.enqueueAt(folder, recheckAt);
    }
    for (const failure of failed) {
      const { folder, full } = failure;
      const failures = (this.#failures.get(folder.path) ?? 0) + 1;
      this.#failures.set(folder.path, failures);
      const delay = retryDelay(failures, this.#deps.retryDelayMs ?? RETRY_DELAY_MS);
      this.enqueueAt(folder, this.#deps.clock.now() + delay, full);
      if ('err' in failure) this.record.reconcileFailed(folder, failure.err, delay);
    }
    // Looked at, and its units locked, without a failure: its next failure is retried after the base delay.
    for (const folder of succeeded) this.#failures.delete(folder.path);
  }
}
