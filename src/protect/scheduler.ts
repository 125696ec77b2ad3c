import path from 'node:path';
import type { Clock } from '../clock.js';
import type { Logger } from '../log/logger.js';
import type { LeafFolder, LockRequest } from './context.js';
import type { LockResult } from './locker.js';
import type { ProvenBackups } from './proven.js';
import type { FolderReport } from './reconcile.js';

export interface SchedulerDeps {
  // `full`: look at every backup, proven or not.
  reconcile(folder: LeafFolder, full: boolean): Promise<FolderReport>;
  // Where a remote's proven backups are kept; none: nothing is remembered.
  proven?(folder: LeafFolder): ProvenBackups | undefined;
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
// A round stops taking folders once it holds this many units: a catch-up of folders with many retained backups
// otherwise holds tens of thousands of requests and entries at once (the rest waits for the next round).
const UNITS_PER_ROUND = 4096;

// An event (or the start-up catch-up) asks for a look at what changed, before anything else; a periodic scan asks for a
// full proof of every backup, in the background, so it never delays a new backup.
export type Urgency = 'event' | 'scan';

interface RoundItem {
  folder: LeafFolder;
  full: boolean;
  urgent: boolean;
}

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
  readonly #dirty = new Map<string, { folder: LeafFolder; full: boolean }>();
  readonly #background = new Map<string, LeafFolder>();
  readonly #timers = new Map<string, { at: number; timer: NodeJS.Timeout; full: boolean }>();
  #running: Promise<void> | undefined;
  #idleWaiters: (() => void)[] = [];
  // Per folder, the units its last reconcile and lock left unprotected (refused, or failed to lock): coverage gaps.
  readonly #gaps = new Map<string, Set<string>>();
  #stopped = false;

  constructor(deps: SchedulerDeps) {
    this.#deps = deps;
  }

  enqueue(folder: LeafFolder, urgency: Urgency = 'event'): void {
    if (this.#stopped) return;
    const queued = this.#dirty.get(folder.path);
    if (urgency === 'scan' && queued === undefined) this.#background.set(folder.path, folder);
    else if (urgency === 'scan') queued!.full = true;
    else
      this.#dirty.set(folder.path, { folder, full: (queued?.full ?? false) || this.#background.delete(folder.path) });
    this.#kick();
  }

  // Looks at a folder again at a given time unless an event brings it in first; the earliest request wins. `full`:
  // look at every backup then, proven or not (a retry of a full proof).
  enqueueAt(folder: LeafFolder, at: number, full = false): void {
    if (this.#stopped) return;
    const existing = this.#timers.get(folder.path);
    if (existing !== undefined && existing.at <= at && (existing.full || !full)) return;
    if (existing !== undefined) clearTimeout(existing.timer);
    const wantFull = full || (existing?.full ?? false);
    const timer = setTimeout(
      () => {
        this.#timers.delete(folder.path);
        this.enqueue(folder);
        if (wantFull) this.enqueue(folder, 'scan');
      },
      Math.min(MAX_TIMER_MS, Math.max(0, Math.min(at, existing?.at ?? at) - this.#deps.clock.now())),
    );
    timer.unref();
    this.#timers.set(folder.path, { at: Math.min(at, existing?.at ?? at), timer, full: wantFull });
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
    this.#background.delete(folderPath);
    this.#gaps.delete(folderPath);
    const existing = this.#timers.get(folderPath);
    if (existing !== undefined) clearTimeout(existing.timer);
    this.#timers.delete(folderPath);
  }

  // Resolves once every folder queued so far has been reconciled and locked (timers for later rechecks excepted).
  idle(): Promise<void> {
    if (this.#running === undefined && this.#queued() === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  // Stops taking work and lets the round in flight finish, so no batch is cut in half.
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    this.#dirty.clear();
    this.#background.clear();
    await this.#running;
  }

  // A folder taken for a round but not reached: back in its queue, unless something queued it again meanwhile.
  #requeue({ folder, full, urgent }: RoundItem): void {
    if (this.#stopped) return;
    const queued = this.#dirty.get(folder.path);
    if (queued !== undefined) queued.full ||= full;
    else if (urgent) this.#dirty.set(folder.path, { folder, full: full || this.#background.delete(folder.path) });
    else this.#background.set(folder.path, folder);
  }

  #queued(): number {
    return this.#dirty.size + this.#background.size;
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
        if (this.#queued() > 0 && !this.#stopped) {
          this.#kick();
          return;
        }
        const waiters = this.#idleWaiters;
        this.#idleWaiters = [];
        for (const resolve of waiters) resolve();
      });
  }

  async #drain(): Promise<void> {
    while (this.#queued() > 0 && !this.#stopped) {
      const round: RoundItem[] = [];
      for (const queued of this.#dirty.values()) {
        if (round.length === FOLDERS_PER_ROUND) break;
        round.push({ ...queued, urgent: true });
      }
      for (const folder of this.#background.values()) {
        if (round.length === FOLDERS_PER_ROUND) break;
        round.push({ folder, full: true, urgent: false });
      }
      for (const { folder } of round) {
        this.#dirty.delete(folder.path);
        this.#background.delete(folder.path);
      }
      await this.#runRound(round);
    }
  }

  async #runRound(folders: RoundItem[]): Promise<void> {
    const { log, clock } = this.#deps;
    const requests: LockRequest[] = [];
    const folderOf = new Map<string, LeafFolder>();
    const provable: { folder: LeafFolder; report: FolderReport }[] = [];
    // Folders of this round taken for a full proof: a retry stays one.
    const fullFolders = new Set<string>();
    let next = 0;
    const started = performance.now();
    // One folder after the other: the reconcile's filesystem calls are synchronous (between slices), so running
    // several at once would only interleave them.
    while (next < folders.length && requests.length < UNITS_PER_ROUND) {
      const { folder, full } = folders[next++]!;
      if (full) fullFolders.add(folder.path);
      try {
        const report = await this.#deps.reconcile(folder, full);
        provable.push({ folder, report });
        this.lastReconcileAt = clock.now();
        if (report.refusals.length > 0) this.#gaps.set(folder.path, new Set(report.refusals.map((r) => r.path)));
        else this.#gaps.delete(folder.path);
        for (const refusal of report.refusals) {
          this.counters.refusals++;
          log.warn(
            { remote: folder.remote.id, path: refusal.path, security: refusal.security },
            `not locking ${refusal.path}: ${refusal.reason}`,
          );
        }
        for (const request of report.requests) {
          if (folderOf.has(request.unit)) continue;
          folderOf.set(request.unit, folder);
          requests.push(request);
        }
        if (report.recheckAt !== undefined) this.enqueueAt(folder, report.recheckAt);
      } catch (err) {
        this.counters.reconcileErrors++;
        log.error(
          { err, remote: folder.remote.id, folder: folder.path },
          'could not read a backup folder; it will be tried again',
        );
        this.enqueueAt(folder, clock.now() + this.#retryDelay(), full);
      }
    }
    if (log.isLevelEnabled('debug')) {
      const { rss, heapTotal, heapUsed, external } = process.memoryUsage();
      const mb = (bytes: number): number => Math.round(bytes / 1e5) / 10;
      log.debug(
        {
          folders: next,
          units: requests.length,
          reconcileMs: Math.round(performance.now() - started),
          rssMb: mb(rss),
          heapMb: mb(heapUsed),
          heapTotalMb: mb(heapTotal),
          externalMb: mb(external),
        },
        `reconciled ${next} folder(s)`,
      );
    }
    for (const item of folders.slice(next)) this.#requeue(item);
    if (requests.length === 0) {
      this.#settleProofs(provable, []);
      return;
    }

    let results: LockResult[];
    try {
      results = await this.#deps.lock(requests);
    } catch (err) {
      // chattr could not even be spawned (EAGAIN, EMFILE, ENOMEM...): every folder of the round is tried again.
      this.counters.lockFailures += requests.length;
      log.error(
        { err, units: requests.length },
        `could not lock ${requests.length} unit(s); their folders are tried again in ${this.#retryDelay() / 1000} s`,
      );
      for (const folder of new Set(folderOf.values()))
        this.enqueueAt(folder, clock.now() + this.#retryDelay(), fullFolders.has(folder.path));
      this.#settleProofs(
        provable,
        requests.map((request) => ({
          request,
          outcome: { path: request.unit, status: 'failed', code: 'ESPAWN', message: 'chattr could not be run' },
          indexed: false,
        })),
      );
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
      if (outcome.status === 'failed' && folderPath !== undefined)
        this.#gaps.set(folderPath, (this.#gaps.get(folderPath) ?? new Set()).add(request.unit));
      if (outcome.status === 'failed') {
        this.counters.lockFailures++;
        log.error(
          { remote: request.remote.id, path: outcome.path, code: outcome.code, err: { message: outcome.message } },
          `could not lock ${outcome.path}; it will be tried again`,
        );
        const folder = folderOf.get(request.unit);
        if (folder !== undefined)
          this.enqueueAt(folder, clock.now() + this.#retryDelay(), fullFolders.has(folder.path));
      } else if (outcome.status === 'ok' && !result.indexed) {
        this.counters.indexFailures++;
      }
    }
    this.#settleProofs(provable, results);
    const lockedAt = clock.now();
    this.lastLock = {
      at: new Date(lockedAt).toISOString(),
      units: results.filter((r) => r.outcome.status === 'ok').length,
      failed: results.filter((r) => r.outcome.status === 'failed').length,
    };
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

  // A backup is proven once every unit it governs is locked and indexed: those of this round's batches, and the rest
  // already were. Its json's identity is the one after the lock when the json was locked in this round. A backup with
  // a unit that failed, or that the reconcile could not prove, loses any proof it had, so a retry looks at it again.
  #settleProofs(
    reconciled: readonly { folder: LeafFolder; report: FolderReport }[],
    results: readonly LockResult[],
  ): void {
    const byBackup = new Map<string, LockResult[]>();
    for (const result of results) {
      const group = byBackup.get(result.request.backup.label);
      if (group === undefined) byBackup.set(result.request.backup.label, [result]);
      else group.push(result);
    }
    for (const { folder, report } of reconciled) {
      const proven = this.#deps.proven?.(folder);
      if (proven === undefined) continue;
      for (const json of report.unprovable ?? []) proven.unprove(folder.path, path.basename(json));
      for (const backup of report.provable) {
        const group = byBackup.get(backup.json) ?? [];
        if (group.some((r) => r.outcome.status !== 'ok' || !r.indexed)) {
          proven.unprove(folder.path, path.basename(backup.json));
          continue;
        }
        const identity = group.find((r) => r.request.unit === backup.json)?.identity ?? backup.identity;
        proven.prove(folder.path, path.basename(backup.json), identity);
      }
    }
  }
}
