import type { Logger } from '../log/logger.js';
import type { LiftCandidate } from './plan.js';

export interface LiftOptions {
  now: number;
  dryRun: boolean;
  // Make the whole remote mutable, windows ignored (decommissioning).
  all: boolean;
  onProgress?: (done: number, total: number) => void;
  // Entries read, checked and unlocked together (default CHUNK in pass.ts); smaller in tests.
  chunkSize?: number;
}

export interface LiftedUnit {
  path: string;
  day: string;
  kind: LiftCandidate['kind'];
}

export interface LiftReport {
  remote: string;
  dryRun: boolean;
  // Unlocked (or, with dryRun, would be); their entries are forgotten.
  unlocked: LiftedUnit[];
  // Gone from the remote already: only their entries are forgotten.
  vanished: LiftedUnit[];
  failed: { path: string; message: string }[];
  // Never acted on: outside the root, through a symlink, or not the unit that was locked.
  suspicious: { path: string; reason: string }[];
  unreadableEntries: string[];
  // Expired, but XO was running on their VM folder (lift/xo-busy.ts), or a json whose flat VHD stays locked
  // (lift/flat-order.ts): left locked for a later pass.
  deferred: string[];
  kept: number;
}

export function emptyReport(remote: string, dryRun: boolean): LiftReport {
  return {
    remote,
    dryRun,
    unlocked: [],
    vanished: [],
    failed: [],
    suspicious: [],
    unreadableEntries: [],
    deferred: [],
    kept: 0,
  };
}

// Units per day bucket, oldest first: how admins read what a lift did or would do.
export function countByDay(units: readonly { day: string }[]): [string, number][] {
  const counts = new Map<string, number>();
  for (const unit of units) counts.set(unit.day, (counts.get(unit.day) ?? 0) + 1);
  return [...counts].sort(([a], [b]) => a.localeCompare(b));
}

// The daemon's journal lines for one lift pass: one summary, then one line per failure or refusal.
export function logLiftReport(report: LiftReport, log: Logger): void {
  for (const failure of report.failed)
    log.error(
      { path: failure.path, err: { message: failure.message } },
      `could not unlock ${failure.path}; the next lift pass tries again`,
    );
  for (const suspicious of report.suspicious)
    log.warn({ path: suspicious.path, security: true }, `not unlocking ${suspicious.path}: ${suspicious.reason}`);
  for (const entry of report.unreadableEntries)
    log.warn(
      { entry },
      `index file ${entry} is not an entry this version can read; left alone (rebuild-index imports the prior art's)`,
    );
  if (report.deferred.length > 0)
    log.info(
      { deferred: report.deferred.length },
      `not unlocking ${report.deferred.length} expired unit(s) yet: XO is running on their VM folder (its .lock ` +
        'folder is held), or a flat VHD of their backup stays locked; a later lift pass unlocks them',
    );
  if (report.unlocked.length + report.vanished.length === 0) {
    log.debug({ kept: report.kept }, 'lift pass: nothing expired');
    return;
  }
  log.info(
    {
      unlocked: report.unlocked.length,
      vanished: report.vanished.length,
      kept: report.kept,
      days: Object.fromEntries(countByDay(report.unlocked)),
    },
    `lifted ${report.unlocked.length} unit(s) whose window has passed on remote ${report.remote}`,
  );
}
