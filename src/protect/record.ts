import type { Logger } from '../log/logger.js';
import type { LeafFolder, LockRequest, Refusal } from './context.js';
import { groupByBackup } from './batch.js';
import { HELD, type LockResult } from './locker.js';

export interface ProtectionCounters {
  backupsLocked: number;
  unitsLocked: number;
  lockFailures: number;
  indexFailures: number;
  refusals: number;
  reconcileErrors: number;
}

export interface LastLock {
  at: string;
  units: number;
  failed: number;
}

// What protection did, for status, metrics and the admin: its counters, its last lock batch, and a log line for each
// refusal, failure and locked backup.
export class ProtectionRecord {
  readonly counters: ProtectionCounters = {
    backupsLocked: 0,
    unitsLocked: 0,
    lockFailures: 0,
    indexFailures: 0,
    refusals: 0,
    reconcileErrors: 0,
  };
  // The last lock batch: when, how many units, how many failed.
  lastLock: LastLock | undefined;
  // When a lock batch last locked everything it was given, and when a folder was last reconciled without error.
  lastSuccessfulLockAt: number | undefined;
  lastReconcileAt: number | undefined;
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  refused(folder: LeafFolder, refusals: readonly Refusal[], warnings: readonly Refusal[]): void {
    for (const refusal of refusals) this.#warn(folder, refusal, `not locking ${refusal.path}: ${refusal.reason}`);
    for (const warning of warnings) this.#warn(folder, warning, `${warning.path}: ${warning.reason}`);
  }

  #warn(folder: LeafFolder, { path, security }: Refusal, message: string): void {
    this.counters.refusals++;
    this.#log.warn({ remote: folder.remote.id, path, security }, message);
  }

  reconcileFailed(folder: LeafFolder, err: unknown, retryInMs: number): void {
    this.counters.reconcileErrors++;
    this.#log.error(
      { err, remote: folder.remote.id, folder: folder.path, retryInMs },
      `could not read a backup folder; it will be tried again in ${Math.round(retryInMs / 1000)} s`,
    );
  }

  flagsUnread(err: unknown): void {
    this.counters.reconcileErrors++;
    this.#log.error({ err }, 'could not read the immutable flags of a full proof; its folders are tried again');
  }

  // The flag helper could not even be spawned (EAGAIN, EMFILE, ENOMEM...): every unit of the batch failed.
  lockNotRun(err: unknown, units: number, retryFromMs: number): void {
    this.counters.lockFailures += units;
    this.#log.error(
      { err, units },
      `could not lock ${units} unit(s); their folders are tried again (from ${retryFromMs / 1000} s)`,
    );
  }

  locked(results: readonly LockResult[], lockedAt: number): void {
    for (const result of results) this.#lockedUnit(result);
    this.lastLock = summarizeLock(results, lockedAt);
    if (this.lastLock.failed === 0) this.lastSuccessfulLockAt = lockedAt;
    for (const [label, group] of groupByBackup(results)) {
      const locked = group.filter((r) => r.outcome.status === 'ok');
      if (locked.length > 0) this.#lockedBackup(label, locked[0]!.request, locked.length, group.length, lockedAt);
    }
  }

  #lockedUnit({ outcome, request, indexed, movedFrom }: LockResult): void {
    if (outcome.status === 'ok' && !indexed) this.counters.indexFailures++;
    // Locked all the same with what XO never writes in it, or a second name: a security warning (locker.ts says it).
    if (outcome.status === 'ok' && outcome.warning !== undefined) this.counters.refusals++;
    if (movedFrom !== undefined) {
      this.counters.refusals++;
      this.#log.warn(
        { remote: request.remote.id, path: request.unit, movedFrom: movedFrom.path, security: true },
        `${request.unit} is the unit locked before at ${movedFrom.path} (moved?): ` +
          `it stays locked at least until ${new Date(movedFrom.until).toISOString()}, whatever its new name says`,
      );
    }
    // Held by a repair lift since its folder was reconciled: left alone, and locked once the hold ends.
    if (outcome.status !== 'failed' || outcome.code === HELD) return;
    this.counters.lockFailures++;
    this.#log.error(
      { remote: request.remote.id, path: outcome.path, code: outcome.code, err: { message: outcome.message } },
      `could not lock ${outcome.path}; it will be tried again`,
    );
  }

  #lockedBackup(label: string, request: LockRequest, locked: number, units: number, lockedAt: number): void {
    this.counters.backupsLocked++;
    this.counters.unitsLocked += locked;
    this.#log.info(
      {
        remote: request.remote.id,
        kind: request.kind,
        backup: label,
        datetime: request.backup.datetime,
        units: locked,
        failed: units - locked,
        latencyMs: Math.max(0, Math.round(lockedAt - request.backup.completedAt)),
      },
      `locked ${request.kind} backup ${label} (${locked} unit${locked === 1 ? '' : 's'})`,
    );
  }
}

function summarizeLock(results: readonly LockResult[], lockedAt: number): LastLock {
  return {
    at: new Date(lockedAt).toISOString(),
    units: results.filter((r) => r.outcome.status === 'ok').length,
    failed: results.filter((r) => r.outcome.status === 'failed' && r.outcome.code !== HELD).length,
  };
}
