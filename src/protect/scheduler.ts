import { retryDelay, RETRY_DELAY_MS } from './backoff.js';
import type { LeafFolder } from './context.js';
import { Coverage } from './coverage.js';
import { FolderFacts } from './folder-facts.js';
import { FolderQueue, type RoundItem, type Urgency } from './folder-queue.js';
import { RecheckTimers } from './rechecks.js';
import { ProtectionRecord } from './record.js';
import { runRound, type RoundDeps, type RoundOutcome } from './round.js';

export type { Urgency } from './folder-queue.js';
export { MAX_TIMER_MS } from './rechecks.js';

export type SchedulerDeps = RoundDeps;

// Folders reconciled in one round; their units share flag-helper batches.
const FOLDERS_PER_ROUND = 512;
// A round stops taking folders once it holds this many units, so a catch-up never holds every request at once.
const UNITS_PER_ROUND = 4096;

// Turns "this folder changed" hints into rounds (protect/round.ts), and times them: repeated hints for one folder
// coalesce, a folder is looked at again when its round asks, and a folder that fails is tried again later and later.
export class ProtectionScheduler {
  // What the rounds did and found, for status and metrics.
  readonly record: ProtectionRecord;
  readonly coverage = new Coverage();
  readonly facts = new FolderFacts();
  readonly #deps: SchedulerDeps;
  readonly #queue = new FolderQueue();
  readonly #rechecks: RecheckTimers;
  #running: Promise<void> | undefined;
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

  // Stops taking work and lets the round in flight finish, so no batch is cut in half.
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#rechecks.clear();
    this.#queue.clear();
    await this.#running;
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
    while (this.#queue.size > 0 && !this.#stopped) {
      const folders = this.#queue.take(FOLDERS_PER_ROUND);
      const outcome = await runRound(folders, UNITS_PER_ROUND, this.#deps, this);
      this.#timeNextLooks(folders, outcome);
    }
  }

  #timeNextLooks(folders: readonly RoundItem[], { reached, looked, failed, succeeded }: RoundOutcome): void {
    if (!this.#stopped) this.#queue.requeue(folders.slice(reached));
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
