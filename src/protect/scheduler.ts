import type { Clock } from '../clock.js';
import type { Logger } from '../log/logger.js';
import type { LeafFolder, LockRequest } from './context.js';
import type { LockResult } from './locker.js';
import type { FolderReport } from './reconcile.js';

export interface SchedulerDeps {
  reconcile(folder: LeafFolder): Promise<FolderReport>;
  lock(requests: LockRequest[]): Promise<LockResult[]>;
  clock: Clock;
  log: Logger;
  retryDelayMs?: number;
}

export interface LastLock {
  at: string;
  units: number;
  failed: number;
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
// setTimeout fires at once for delays past 2^31-1 ms (24.8 days); a later recheck just comes early and re-arms.
export const MAX_TIMER_MS = 2 ** 31 - 1;
// Folders reconciled in one round; their units share chattr batches.
const FOLDERS_PER_ROUND = 512;
const RECONCILE_CONCURRENCY = 16;

// Turns "this folder changed" hints into reconciles: repeated hints for one folder coalesce, and every unit found
// in a round, from however many backups, is locked in shared batches.
export class ProtectionScheduler {
  readonly counters: ProtectionCounters = { backupsLocked: 0, unitsLocked: 0, lockFailures: 0, indexFailures: 0, refusals: 0, reconcileErrors: 0 };
  // The last lock batch, for status: when, how many units, how many failed.
  lastLock: LastLock | undefined;
  // When a lock batch last locked everything it was given, and when a folder was last reconciled without error.
  lastSuccessfulLockAt: number | undefined;
  lastReconcileAt: number | undefined;
  readonly #deps: SchedulerDeps;
  readonly #dirty = new Map<string, LeafFolder>();
  readonly #timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  #running: Promise<void> | undefined;
  #idleWaiters: (() => void)[] = [];
  // Per folder, the units its last reconcile and lock left unprotected (refused, or failed to lock): coverage gaps.
  readonly #gaps = new Map<string, Set<string>>();
  #stopped = false;

  constructor(deps: SchedulerDeps) {
    this.#deps = deps;
  }

  enqueue(folder: LeafFolder): void {
    if (this.#stopped) return;
    this.#dirty.set(folder.path, folder);
    this.#kick();
  }

  // Looks at a folder again at a given time unless an event brings it in first; the earliest request wins.
  enqueueAt(folder: LeafFolder, at: number): void {
    if (this.#stopped) return;
    const existing = this.#timers.get(folder.path);
    if (existing !== undefined && existing.at <= at) return;
    if (existing !== undefined) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.#timers.delete(folder.path);
      this.enqueue(folder);
    }, Math.min(MAX_TIMER_MS, Math.max(0, at - this.#deps.clock.now())));
    timer.unref();
    this.#timers.set(folder.path, { at, timer });
  }

  // Units the daemon knows are completed but not locked (refused, or failed and waiting for a retry).
  coverageGaps(): number {
    let gaps = 0;
    for (const units of this.#gaps.values()) gaps += units.size;
    return gaps;
  }

  // Folders waiting to be tried again after a failure or to have a json looked at again.
  pendingRechecks(): number {
    return this.#timers.size;
  }

  forget(folderPath: string): void {
    this.#dirty.delete(folderPath);
    this.#gaps.delete(folderPath);
    const existing = this.#timers.get(folderPath);
    if (existing !== undefined) clearTimeout(existing.timer);
    this.#timers.delete(folderPath);
  }

  // Resolves once every folder queued so far has been reconciled and locked (timers for later rechecks excepted).
  idle(): Promise<void> {
    if (this.#running === undefined && this.#dirty.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  // Stops taking work and lets the round in flight finish, so no batch is cut in half.
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    this.#dirty.clear();
    await this.#running;
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
        if (this.#dirty.size > 0 && !this.#stopped) {
          this.#kick();
          return;
        }
        const waiters = this.#idleWaiters;
        this.#idleWaiters = [];
        for (const resolve of waiters) resolve();
      });
  }

  async #drain(): Promise<void> {
    while (this.#dirty.size > 0 && !this.#stopped) {
      const round = [...this.#dirty.values()].slice(0, FOLDERS_PER_ROUND);
      for (const folder of round) this.#dirty.delete(folder.path);
      await this.#runRound(round);
    }
  }

  async #runRound(folders: LeafFolder[]): Promise<void> {
    const { log, clock } = this.#deps;
    const requests: LockRequest[] = [];
    const folderOf = new Map<string, LeafFolder>();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < folders.length) {
        const folder = folders[next++] as LeafFolder;
        try {
          const report = await this.#deps.reconcile(folder);
          this.lastReconcileAt = clock.now();
          if (report.refusals.length > 0) this.#gaps.set(folder.path, new Set(report.refusals.map((r) => r.path)));
          else this.#gaps.delete(folder.path);
          for (const refusal of report.refusals) {
            this.counters.refusals++;
            log.warn({ remote: folder.remote.id, path: refusal.path, security: refusal.security }, `not locking ${refusal.path}: ${refusal.reason}`);
          }
          for (const request of report.requests) {
            if (folderOf.has(request.unit)) continue;
            folderOf.set(request.unit, folder);
            requests.push(request);
          }
          if (report.recheckAt !== undefined) this.enqueueAt(folder, report.recheckAt);
        } catch (err) {
          this.counters.reconcileErrors++;
          log.error({ err, remote: folder.remote.id, folder: folder.path }, 'could not read a backup folder; it will be tried again');
          this.enqueueAt(folder, clock.now() + this.#retryDelay());
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(RECONCILE_CONCURRENCY, folders.length) }, worker));
    if (requests.length === 0) return;

    let results: LockResult[];
    try {
      results = await this.#deps.lock(requests);
    } catch (err) {
      // chattr could not even be spawned (EAGAIN, EMFILE, ENOMEM...): every folder of the round is tried again.
      this.counters.lockFailures += requests.length;
      log.error({ err, units: requests.length }, `could not lock ${requests.length} unit(s); their folders are tried again in ${this.#retryDelay() / 1000} s`);
      for (const folder of new Set(folderOf.values())) this.enqueueAt(folder, clock.now() + this.#retryDelay());
      return;
    }
    const byBackup = new Map<string, LockResult[]>();
    for (const result of results) {
      const key = result.request.backup.label;
      const group = byBackup.get(key);
      if (group === undefined) byBackup.set(key, [result]);
      else group.push(result);
      const { outcome, request } = result;
      const folderPath = folderOf.get(request.unit)?.path;
      if (outcome.status === 'failed' && folderPath !== undefined) this.#gaps.set(folderPath, (this.#gaps.get(folderPath) ?? new Set()).add(request.unit));
      if (outcome.status === 'failed') {
        this.counters.lockFailures++;
        log.error({ remote: request.remote.id, path: outcome.path, code: outcome.code, err: { message: outcome.message } }, `could not lock ${outcome.path}; it will be tried again`);
        const folder = folderOf.get(request.unit);
        if (folder !== undefined) this.enqueueAt(folder, clock.now() + this.#retryDelay());
      } else if (outcome.status === 'ok' && !result.indexed) {
        this.counters.indexFailures++;
      }
    }
    const lockedAt = clock.now();
    this.lastLock = { at: new Date(lockedAt).toISOString(), units: results.filter((r) => r.outcome.status === 'ok').length, failed: results.filter((r) => r.outcome.status === 'failed').length };
    if (this.lastLock.failed === 0) this.lastSuccessfulLockAt = lockedAt;
    for (const [label, group] of byBackup) {
      const locked = group.filter((r) => r.outcome.status === 'ok');
      if (locked.length === 0) continue;
      const { request } = locked[0] as LockResult;
      this.counters.backupsLocked++;
      this.counters.unitsLocked += locked.length;
      log.info(
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
}
