import type { Clock } from '../clock.js';
import type { Logger } from '../log/logger.js';
import type { LeafFolder, LockRequest, Refusal } from './context.js';
import { relockFlagsOff, type FlagReader } from './flag-proof.js';
import { FolderQueue, type RoundItem, type Urgency } from './folder-queue.js';
import { FolderFacts } from './folder-facts.js';
import { retryDelay } from './backoff.js';
import { HELD, type LockResult } from './locker.js';
import type { ProvenBackups } from './proven.js';
import { RecheckTimers } from './rechecks.js';
import type { FolderReport } from './reconcile.js';
import {
  addRequests,
  emptyBatch,
  groupByBackup,
  logRoundMemory,
  settleProofs,
  spawnFailures,
  summarizeLock,
  type LastLock,
  type RoundBatch,
} from './round.js';

export type { Urgency } from './folder-queue.js';
export { MAX_TIMER_MS } from './rechecks.js';
export type { LastLock } from './round.js';

export interface SchedulerDeps {
  // `full`: look at every backup, proven or not.
  reconcile(folder: LeafFolder, full: boolean): Promise<FolderReport>;
  // Where a remote's proven backups are kept; none: nothing is remembered.
  proven?(folder: LeafFolder): ProvenBackups | undefined;
  lock(requests: LockRequest[]): Promise<LockResult[]>;
  // Reads the flags of what full proofs found locked as indexed, once per round; none: they are not read.
  flags?: FlagReader;
  clock: Clock;
  log: Logger;
  retryDelayMs?: number;
}

export interface ProtectionCounters {
  backupsLocked: number;
  unitsLocked: number;
  lockFailures: number;
  indexFailures: number;
  refusals: number;
  reconcileErrors: number;
}

// How long a folder whose reconcile or lock failed waits before it is tried again.
export const RETRY_DELAY_MS = 10_000;
// Folders reconciled in one round; their units share flag-helper batches.
const FOLDERS_PER_ROUND = 512;
// A round stops taking folders once it holds this many units, so a catch-up never holds every request at once.
const UNITS_PER_ROUND = 4096;

// Turns "this folder changed" hints into reconciles: repeated hints for one folder coalesce, and every unit found
// in a round, from however many backups, is locked in shared batches.
export class ProtectionScheduler {
  readonly counters: ProtectionCounters = {
    backupsLocked: 0,
    unitsLocked: 0,
    lockFailures: 0,
    indexFailures: 0,
    refusals: 0,
    reconcileErrors: 0,
  };
  // The last lock batch, for status: when, how many units, how many failed.
  lastLock: LastLock | undefined;
  // When a lock batch last locked everything it was given, and when a folder was last reconciled without error.
  lastSuccessfulLockAt: number | undefined;
  lastReconcileAt: number | undefined;
  readonly #deps: SchedulerDeps;
  readonly #queue = new FolderQueue();
  readonly #rechecks: RecheckTimers;
  #running: Promise<void> | undefined;
  #idleWaiters: (() => void)[] = [];
  // Per folder, the units its last reconcile and lock left unprotected (refused, or failed to lock): coverage gaps.
  readonly #gaps = new Map<string, Set<string>>();
  readonly facts = new FolderFacts();
  // Failures in a row, by folder: the retry delay doubles with each (protect/backoff.ts).
  readonly #failures = new Map<string, number>();
  // Units whose entry a lock batch of this daemon left pending (no identity recorded), by path, with their remote id.
  readonly #leftPending = new Map<string, string>();
  #stopped = false;

  constructor(deps: SchedulerDeps) {
    this.#deps = deps;
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

  // Units the daemon knows are completed but not locked (refused, or failed and waiting for a retry).
  coverageGaps(): number {
    let gaps = 0;
    for (const units of this.#gaps.values()) gaps += units.size;
    return gaps;
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
    this.#gaps.delete(folderPath);
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

  // Called once per folder and round that failed.
  #retryLater(folder: LeafFolder, full: boolean): number {
    const failures = (this.#failures.get(folder.path) ?? 0) + 1;
    this.#failures.set(folder.path, failures);
    const delay = retryDelay(failures, this.#retryDelay());
    this.enqueueAt(folder, this.#deps.clock.now() + delay, full);
    return delay;
  }

  // A folder reconciled, and its units locked, without a failure: its next failure is retried after the base delay.
  #succeeded(folders: Iterable<LeafFolder>, failed: ReadonlySet<string>): void {
    for (const folder of folders) if (!failed.has(folder.path)) this.#failures.delete(folder.path);
  }

  #retryDelay(): number {
    return this.#deps.retryDelayMs ?? RETRY_DELAY_MS;
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
    while (this.#queue.size > 0 && !this.#stopped) await this.#runRound(this.#queue.take(FOLDERS_PER_ROUND));
  }

  async #runRound(folders: RoundItem[]): Promise<void> {
    const batch = await this.#reconcileRound(folders);
    if (!this.#stopped) for (const item of folders.slice(batch.reached)) this.#queue.requeue(item);
    if (batch.requests.length === 0) {
      this.#settleProofs(batch, []);
      for (const folder of batch.missing.values()) this.#retryLater(folder, batch.fullFolders.has(folder.path));
      this.#succeeded(
        batch.reconciled.map((r) => r.folder),
        new Set(batch.missing.keys()),
      );
      return;
    }
    const results = await this.#lockBatch(batch);
    if (results !== undefined) this.#recordResults(batch, results);
  }

  // One folder after the other: the reconcile's filesystem calls are synchronous (between slices), so running
  // several at once would only interleave them.
  async #reconcileRound(folders: readonly RoundItem[]): Promise<RoundBatch> {
    const batch = emptyBatch();
    const started = performance.now();
    while (batch.reached < folders.length && batch.requests.length < UNITS_PER_ROUND) {
      await this.#reconcileFolder(folders[batch.reached++]!, batch);
    }
    await this.#relockFlagsOff(batch);
    logRoundMemory(this.#deps.log, batch.reached, batch.requests.length, started);
    return batch;
  }

  async #reconcileFolder({ folder, full }: RoundItem, batch: RoundBatch): Promise<void> {
    if (full) batch.fullFolders.add(folder.path);
    try {
      const report = await this.#deps.reconcile(folder, full);
      batch.reconciled.push({ folder, report });
      this.lastReconcileAt = this.#deps.clock.now();
      this.#noteRefusals(folder, report);
      this.facts.note(folder.path, 'chainUnknown', report.chainUnknown);
      this.facts.note(folder.path, 'flatVhds', report.flatVhds);
      this.facts.note(folder.path, 'pastWindow', report.pastWindow);
      addRequests(batch, folder, report.requests);
      if (report.unitsMissing === true) batch.missing.set(folder.path, folder);
      // Only what this reconcile left waiting keeps a recheck: pending_rechecks counts folders really waiting.
      this.#rechecks.supersede(folder.path, full);
      if (report.recheckAt !== undefined) this.enqueueAt(folder, report.recheckAt);
    } catch (err) {
      this.counters.reconcileErrors++;
      const delay = this.#retryLater(folder, full);
      this.#deps.log.error(
        { err, remote: folder.remote.id, folder: folder.path, retryInMs: delay },
        `could not read a backup folder; it will be tried again in ${Math.round(delay / 1000)} s`,
      );
    }
  }

  // The units of this round's full proofs whose flag is off, found in one read, asked for again.
  async #relockFlagsOff(batch: RoundBatch): Promise<void> {
    const { flags } = this.#deps;
    if (flags === undefined || batch.fullFolders.size === 0) return;
    try {
      for (const found of await relockFlagsOff(batch.reconciled, flags)) {
        this.#logRefusals(found.folder, found.refusals, found.warnings);
        if (found.refusals.length > 0) {
          const gaps = this.#gaps.get(found.folder.path) ?? new Set();
          for (const refusal of found.refusals) gaps.add(refusal.path);
          this.#gaps.set(found.folder.path, gaps);
        }
        addRequests(batch, found.folder, found.requests);
      }
    } catch (err) {
      // Unread, nothing is known to be off: the proofs of the round's full folders are taken back and tried again.
      this.counters.reconcileErrors++;
      for (const { folder, report } of batch.reconciled) {
        if (!batch.fullFolders.has(folder.path)) continue;
        report.unprovable = [...(report.unprovable ?? []), ...report.provable.map((b) => b.json)];
        report.provable = [];
        this.#retryLater(folder, true);
      }
      this.#deps.log.error({ err }, 'could not read the immutable flags of a full proof; its folders are tried again');
    }
  }

  #noteRefusals(folder: LeafFolder, report: FolderReport): void {
    if (report.refusals.length > 0) this.#gaps.set(folder.path, new Set(report.refusals.map((r) => r.path)));
    else this.#gaps.delete(folder.path);
    this.#logRefusals(folder, report.refusals, report.warnings ?? []);
  }

  #logRefusals(folder: LeafFolder, refusals: readonly Refusal[], warnings: readonly Refusal[]): void {
    for (const refusal of refusals) {
      this.counters.refusals++;
      this.#deps.log.warn(
        { remote: folder.remote.id, path: refusal.path, security: refusal.security },
        `not locking ${refusal.path}: ${refusal.reason}`,
      );
    }
    for (const warning of warnings) {
      this.counters.refusals++;
      this.#deps.log.warn(
        { remote: folder.remote.id, path: warning.path, security: warning.security },
        `${warning.path}: ${warning.reason}`,
      );
    }
  }

  // Undefined when the flag helper could not even be spawned (EAGAIN, EMFILE, ENOMEM...): every folder is tried again.
  async #lockBatch(batch: RoundBatch): Promise<LockResult[] | undefined> {
    const { requests } = batch;
    try {
      return await this.#deps.lock(requests);
    } catch (err) {
      this.counters.lockFailures += requests.length;
      this.#deps.log.error(
        { err, units: requests.length },
        `could not lock ${requests.length} unit(s); their folders are tried again (from ${this.#retryDelay() / 1000} s)`,
      );
      for (const folder of new Set(batch.folderOf.values()))
        this.#retryLater(folder, batch.fullFolders.has(folder.path));
      this.#settleProofs(batch, spawnFailures(requests));
      return undefined;
    }
  }

  #recordResults(batch: RoundBatch, results: readonly LockResult[]): void {
    // A unit missing or vanished is looked at again like a failed one, backing off alike (a json naming a path that
    // never comes must not cost a reconcile every 10 s).
    const failed = new Map(batch.missing);
    for (const result of results) {
      const folder = this.#recordResult(batch, result);
      if (folder !== undefined) failed.set(folder.path, folder);
    }
    for (const folder of failed.values()) this.#retryLater(folder, batch.fullFolders.has(folder.path));
    this.#succeeded(
      batch.reconciled.map((r) => r.folder),
      new Set(failed.keys()),
    );
    this.#settleProofs(batch, results);
    const lockedAt = this.#deps.clock.now();
    this.lastLock = summarizeLock(results, lockedAt);
    if (this.lastLock.failed === 0) this.lastSuccessfulLockAt = lockedAt;
    this.#logLockedBackups(results, lockedAt);
  }

  // Units of a remote whose entry this daemon left pending and has not completed since (lift will not unlock them).
  pendingUnits(remoteId: string): number {
    let count = 0;
    for (const remote of this.#leftPending.values()) if (remote === remoteId) count++;
    return count;
  }

  // The folder to try again when the unit failed.
  #recordResult(
    batch: RoundBatch,
    { outcome, request, indexed, movedFrom, leftPending }: LockResult,
  ): LeafFolder | undefined {
    if (leftPending === true) this.#leftPending.set(request.unit, request.remote.id);
    else if (indexed) this.#leftPending.delete(request.unit);
    if (outcome.status === 'ok' && !indexed) this.counters.indexFailures++;
    if (movedFrom !== undefined) {
      this.counters.refusals++;
      this.#deps.log.warn(
        { remote: request.remote.id, path: request.unit, movedFrom: movedFrom.path, security: true },
        `${request.unit} is the unit locked before at ${movedFrom.path} (moved?): ` +
          `it stays locked at least until ${new Date(movedFrom.until).toISOString()}, whatever its new name says`,
      );
    }
    // Gone between the reconcile and the lock (moved aside?): looked at again, as documented.
    if (outcome.status === 'vanished') return batch.folderOf.get(request.unit);
    if (outcome.status !== 'failed') return undefined;
    // Held by a repair lift since its folder was reconciled: left alone, and locked once the hold ends.
    if (outcome.code === HELD) return undefined;
    const folder = batch.folderOf.get(request.unit);
    if (folder !== undefined) this.#gaps.set(folder.path, (this.#gaps.get(folder.path) ?? new Set()).add(request.unit));
    this.counters.lockFailures++;
    this.#deps.log.error(
      { remote: request.remote.id, path: outcome.path, code: outcome.code, err: { message: outcome.message } },
      `could not lock ${outcome.path}; it will be tried again`,
    );
    return folder;
  }

  #logLockedBackups(results: readonly LockResult[], lockedAt: number): void {
    for (const [label, group] of groupByBackup(results)) {
      const locked = group.filter((r) => r.outcome.status === 'ok');
      if (locked.length === 0) continue;
      const { request } = locked[0] as LockResult;
      this.counters.backupsLocked++;
      this.counters.unitsLocked += locked.length;
      this.#deps.log.info(
        {
          remote: request.remote.id,
          kind: request.kind,
          backup: label,
          datetime: request.backup.datetime,
          units: locked.length,
          failed: group.length - locked.length,
          latencyMs: Math.max(0, Math.round(lockedAt - request.backup.completedAt)),
        },
        `locked ${request.kind} backup ${label} (${locked.length} unit${locked.length === 1 ? '' : 's'})`,
      );
    }
  }

  #settleProofs(batch: RoundBatch, results: readonly LockResult[]): void {
    settleProofs((folder) => this.#deps.proven?.(folder), batch.reconciled, results);
  }
}
