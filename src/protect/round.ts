import path from 'node:path';
import type { Logger } from '../log/logger.js';
import type { LeafFolder, LockRequest } from './context.js';
import { HELD, type LockResult } from './locker.js';
import type { ProvenBackups } from './proven.js';
import type { FolderReport } from './reconcile.js';

export interface LastLock {
  at: string;
  units: number;
  failed: number;
}

export interface Reconciled {
  folder: LeafFolder;
  report: FolderReport;
}

// What one round's reconciles gathered for its shared lock batches.
export interface RoundBatch {
  requests: LockRequest[];
  // The folder each requested unit came from, so a failure retries that folder.
  folderOf: Map<string, LeafFolder>;
  reconciled: Reconciled[];
  // Folders of this round taken for a full proof: a retry stays one.
  fullFolders: Set<string>;
  // How many of the round's folders were reconciled before the unit budget ran out.
  reached: number;
  // Folders where a unit a complete backup names was missing: tried again like a failure.
  missing: Map<string, LeafFolder>;
}

export function emptyBatch(): RoundBatch {
  return { requests: [], folderOf: new Map(), reconciled: [], fullFolders: new Set(), reached: 0, missing: new Map() };
}

// Adds a folder's lock requests to the batch; a unit already requested by another folder is not asked twice.
export function addRequests(batch: RoundBatch, folder: LeafFolder, requests: readonly LockRequest[]): void {
  for (const request of requests) {
    if (batch.folderOf.has(request.unit)) continue;
    batch.folderOf.set(request.unit, folder);
    batch.requests.push(request);
  }
}

export function groupByBackup(results: readonly LockResult[]): Map<string, LockResult[]> {
  const byBackup = new Map<string, LockResult[]>();
  for (const result of results) {
    const key = result.request.backup.label;
    const group = byBackup.get(key);
    if (group === undefined) byBackup.set(key, [result]);
    else group.push(result);
  }
  return byBackup;
}

// When the flag helper could not even be spawned, every unit of the batch counts as failed.
export function spawnFailures(requests: readonly LockRequest[]): LockResult[] {
  return requests.map((request) => ({
    request,
    outcome: {
      path: request.unit,
      status: 'failed',
      code: 'ESPAWN',
      message: 'the immutable-flag helper could not be run',
    },
    indexed: false,
  }));
}

export function summarizeLock(results: readonly LockResult[], lockedAt: number): LastLock {
  return {
    at: new Date(lockedAt).toISOString(),
    units: results.filter((r) => r.outcome.status === 'ok').length,
    failed: results.filter((r) => r.outcome.status === 'failed' && r.outcome.code !== HELD).length,
  };
}

export function logRoundMemory(log: Logger, folders: number, units: number, started: number): void {
  if (!log.isLevelEnabled('debug')) return;
  const { rss, heapTotal, heapUsed, external } = process.memoryUsage();
  const mb = (bytes: number): number => Math.round(bytes / 1e5) / 10;
  log.debug(
    {
      folders,
      units,
      reconcileMs: Math.round(performance.now() - started),
      rssMb: mb(rss),
      heapMb: mb(heapUsed),
      heapTotalMb: mb(heapTotal),
      externalMb: mb(external),
    },
    `reconciled ${folders} folder(s)`,
  );
}

// A backup is proven once every unit it governs is locked and indexed (this round's, and the rest already were).
// A backup with a unit that failed, or that the reconcile could not prove, loses any proof, so a retry looks again.
export function settleProofs(
  provenOf: (folder: LeafFolder) => ProvenBackups | undefined,
  reconciled: readonly Reconciled[],
  results: readonly LockResult[],
): void {
  const byBackup = groupByBackup(results);
  for (const { folder, report } of reconciled) {
    const proven = provenOf(folder);
    if (proven === undefined) continue;
    for (const json of report.unprovable ?? []) proven.unprove(folder.path, path.basename(json));
    for (const backup of report.provable) {
      const group = byBackup.get(backup.json) ?? [];
      if (group.some((r) => r.outcome.status !== 'ok' || !r.indexed)) {
        proven.unprove(folder.path, path.basename(backup.json));
        continue;
      }
      // The json's identity after the lock, when it was locked in this round.
      const identity = group.find((r) => r.request.unit === backup.json)?.identity ?? backup.identity;
      proven.prove(folder.path, path.basename(backup.json), identity);
    }
  }
}
