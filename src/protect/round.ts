import type { Clock } from '../clock.js';
import type { Logger } from '../log/logger.js';
import { RETRY_DELAY_MS } from './backoff.js';
import {
  addRequests,
  emptyBatch,
  foldersFailedBy,
  settleProofs,
  spawnFailures,
  type FailedFolder,
  type RoundBatch,
} from './batch.js';
import type { LeafFolder, LockRequest } from './context.js';
import type { Coverage } from './coverage.js';
import { relockFlagsOff, type FlagReader } from './flag-proof.js';
import type { FolderFacts } from './folder-facts.js';
import type { RoundItem } from './folder-queue.js';
import type { LockResult } from './locker.js';
import type { ProvenBackups } from './proven.js';
import type { ProtectionRecord } from './record.js';
import type { FolderReport } from './folder-report.js';

export interface RoundDeps {
  // `full`: look at every backup, proven or not.
  reconcile(folder: LeafFolder, full: boolean): Promise<FolderReport>;
  // Where a remote's proven backups are kept; none: nothing is remembered.
  proven?(folder: LeafFolder): ProvenBackups | undefined;
  lock(requests: LockRequest[]): Promise<LockResult[]>;
  // Reads the flags of what full proofs found locked as indexed, once per round; none: they are not read.
  flags?: FlagReader;
  clock: Clock;
  log: Logger;
  // How long a folder whose reconcile or lock failed first waits before it is tried again (protect/backoff.ts).
  retryDelayMs?: number;
}

// What rounds keep for status and metrics: what happened, what is not protected, and what each folder showed.
export interface RoundState {
  record: ProtectionRecord;
  coverage: Coverage;
  facts: FolderFacts;
}

// What a round tells its scheduler, to time the next looks.
export interface RoundOutcome {
  // Each folder reconciled, whether in full, and when to look at it again if no event comes first.
  looked: { folder: LeafFolder; full: boolean; recheckAt?: number }[];
  failed: FailedFolder[];
  // Folders reconciled, and their units locked, without a failure.
  succeeded: LeafFolder[];
}

// One round: its folders, reconciled one after the other (their filesystem calls are synchronous between slices, so
// running several at once would only interleave them), then its units locked in one shared batch. The scheduler
// reconciles the next round while this one locks (protect/scheduler.ts).
export interface Round {
  batch: RoundBatch;
  looked: RoundOutcome['looked'];
  // The paths of its folders: none is taken again until the round is locked.
  taken: Set<string>;
  // When its first folder was taken, and the time spent in its reconciles.
  started: number;
  reconcileMs: number;
}

export function newRound(): Round {
  return { batch: emptyBatch(), looked: [], taken: new Set(), started: performance.now(), reconcileMs: 0 };
}

export async function reconcileIntoRound(
  round: Round,
  item: RoundItem,
  deps: RoundDeps,
  state: RoundState,
): Promise<void> {
  const started = performance.now();
  if (round.taken.size === 0) round.started = started;
  round.taken.add(item.folder.path);
  const recheckAt = await reconcileInto(round.batch, item, deps, state);
  if (recheckAt !== false) round.looked.push({ folder: item.folder, full: item.full, recheckAt });
  round.reconcileMs += performance.now() - started;
}

// The round's second half: reads the flags of its full proofs, locks every unit found in one shared batch, then
// settles the proofs of its backups (only once their units are locked) and records what happened.
export async function lockRound(round: Round, deps: RoundDeps, state: RoundState): Promise<RoundOutcome> {
  const { batch, looked } = round;
  if (deps.flags !== undefined && batch.fullFolders.size > 0) await relockInto(batch, deps.flags, state);
  const provenOf = (folder: LeafFolder): ProvenBackups | undefined => deps.proven?.(folder);
  settleProofs(provenOf, batch, batch.requests.length === 0 ? [] : await lockInto(batch, deps, state));
  const { failed, reconciled } = batch;
  const succeeded = reconciled.map((r) => r.folder).filter((folder) => !failed.has(folder.path));
  return { looked, failed: [...failed.values()], succeeded };
}

// Returns when to look at the folder again (undefined: on the next event), or false when its reconcile failed.
async function reconcileInto(
  batch: RoundBatch,
  { folder, full }: RoundItem,
  deps: RoundDeps,
  { record, coverage, facts }: RoundState,
): Promise<number | undefined | false> {
  if (full) batch.fullFolders.add(folder.path);
  let report: FolderReport;
  try {
    report = await deps.reconcile(folder, full);
  } catch (err) {
    batch.failed.set(folder.path, { folder, full, err });
    return false;
  }
  batch.reconciled.push({ folder, report });
  record.lastReconcileAt = deps.clock.now();
  coverage.reconciled(folder.path, report.refusals);
  record.refused(folder, report.refusals, report.warnings ?? []);
  facts.note(folder.path, 'chainUnknown', report.chainUnknown);
  facts.note(folder.path, 'flatVhds', report.flatVhds);
  facts.note(folder.path, 'pastWindow', report.pastWindow);
  facts.note(folder.path, 'plantedLinks', report.plantedLinks);
  addRequests(batch, folder, report.requests);
  // A unit missing is looked at again like a failed one, backing off alike (a json naming a path that never comes
  // must not cost a reconcile every 10 s).
  if (report.unitsMissing === true) batch.failed.set(folder.path, { folder, full });
  return report.recheckAt;
}

// The units of this round's full proofs whose flag is off, found in one read, asked for again.
async function relockInto(batch: RoundBatch, flags: FlagReader, { record, coverage }: RoundState): Promise<void> {
  try {
    for (const found of await relockFlagsOff(batch.reconciled, flags)) {
      record.refused(found.folder, found.refusals, found.warnings);
      coverage.add(
        found.folder.path,
        found.refusals.map((r) => r.path),
      );
      // A refusal anywhere in the folder takes its proofs back, as the reconcile itself does.
      if (found.refusals.length > 0) batch.withdrawn.add(found.folder.path);
      addRequests(batch, found.folder, found.requests);
    }
  } catch (err) {
    // Unread, nothing is known to be off: the proofs of the round's full folders are taken back and tried again.
    record.flagsUnread(err);
    for (const { folder } of batch.reconciled) {
      if (!batch.fullFolders.has(folder.path)) continue;
      batch.withdrawn.add(folder.path);
      batch.failed.set(folder.path, { folder, full: true });
    }
  }
}

// Locks the batch's units and returns their results; the folders of the units that failed go back as failed.
async function lockInto(
  batch: RoundBatch,
  deps: RoundDeps,
  { record, coverage }: RoundState,
): Promise<readonly LockResult[]> {
  const { requests, folderOf, fullFolders } = batch;
  const failed = (folder: LeafFolder): void => {
    batch.failed.set(folder.path, { folder, full: fullFolders.has(folder.path) });
  };
  let results: LockResult[];
  try {
    results = await deps.lock(requests);
  } catch (err) {
    // The flag helper could not even be spawned (EAGAIN, EMFILE, ENOMEM...): every folder is tried again.
    record.lockNotRun(err, requests.length, deps.retryDelayMs ?? RETRY_DELAY_MS);
    for (const folder of folderOf.values()) failed(folder);
    return spawnFailures(requests);
  }
  coverage.locked(results);
  record.locked(results, deps.clock.now());
  for (const { folder, unlocked } of foldersFailedBy(folderOf, results).values()) {
    coverage.add(folder.path, unlocked);
    failed(folder);
  }
  return results;
}

// Where a round's time and memory go, for tuning (bench/batch-stages.mjs reads it with logLevel debug): `reconcileMs`
// is the time spent reconciling its folders, `roundMs` from its first folder taken to its last reconciled (it may
// wait for folders to come while the round before it locks).
export function logRound(log: Logger, round: Round): void {
  if (!log.isLevelEnabled('debug')) return;
  const { rss, heapTotal, heapUsed, external } = process.memoryUsage();
  const mb = (bytes: number): number => Math.round(bytes / 1e5) / 10;
  const folders = round.taken.size;
  log.debug(
    {
      folders,
      units: round.batch.requests.length,
      reconcileMs: Math.round(round.reconcileMs),
      roundMs: Math.round(performance.now() - round.started),
      rssMb: mb(rss),
      heapMb: mb(heapUsed),
      heapTotalMb: mb(heapTotal),
      externalMb: mb(external),
    },
    `reconciled ${folders} folder(s)`,
  );
}
