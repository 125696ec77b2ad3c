import path from 'node:path';
import type { LeafFolder, LockRequest } from './context.js';
import { HELD, type LockResult } from './locker.js';
import type { ProvenBackups } from './proven.js';
import type { FolderReport } from './folder-report.js';

export interface Reconciled {
  folder: LeafFolder;
  report: FolderReport;
}

// A folder to look at again after a failure; `full`: the retry is a full proof too. `err`: its reconcile failed so.
export interface FailedFolder {
  folder: LeafFolder;
  full: boolean;
  err?: unknown;
}

// What one round's reconciles gathered for its shared lock batches, and what the round found.
export interface RoundBatch {
  requests: LockRequest[];
  // The folder each requested unit came from, so a failure retries that folder.
  folderOf: Map<string, LeafFolder>;
  reconciled: Reconciled[];
  // Folders of this round taken for a full proof: a retry stays one.
  fullFolders: Set<string>;
  // Folders that failed in this round, each once: a reconcile error, a unit missing, unread flags, a failed lock.
  failed: Map<string, FailedFolder>;
  // Folders whose proofs this round took back (a refusal after a flag read, flags unread).
  withdrawn: Set<string>;
}

export function emptyBatch(): RoundBatch {
  return {
    requests: [],
    folderOf: new Map(),
    reconciled: [],
    fullFolders: new Set(),
    failed: new Map(),
    withdrawn: new Set(),
  };
}

// Adds a folder's lock requests to the batch; a unit already requested by another folder is not asked twice.
export function addRequests(batch: RoundBatch, folder: LeafFolder, requests: readonly LockRequest[]): void {
  for (const request of requests) {
    if (batch.folderOf.has(request.unit)) continue;
    batch.folderOf.set(request.unit, folder);
    batch.requests.push(request);
  }
}

// The folders a lock batch's results send back, each with the units it left unlocked. A unit gone between the
// reconcile and the lock (moved aside?) sends its folder back, as documented, but is no gap; a unit held by a repair
// lift is neither (it is locked once the hold ends).
export function foldersFailedBy(
  folderOf: ReadonlyMap<string, LeafFolder>,
  results: readonly LockResult[],
): Map<string, { folder: LeafFolder; unlocked: string[] }> {
  const failed = new Map<string, { folder: LeafFolder; unlocked: string[] }>();
  for (const { request, outcome } of results) {
    if (outcome.status === 'ok' || (outcome.status === 'failed' && outcome.code === HELD)) continue;
    const folder = folderOf.get(request.unit);
    if (folder === undefined) continue;
    let found = failed.get(folder.path);
    if (found === undefined) failed.set(folder.path, (found = { folder, unlocked: [] }));
    if (outcome.status === 'failed') found.unlocked.push(request.unit);
  }
  return failed;
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

// A backup is proven once every unit it governs is locked and indexed (this round's, and the rest already were).
// A backup with a unit that failed, or that the reconcile could not prove, or of a folder whose proofs the round took
// back, loses any proof, so a retry looks again.
export function settleProofs(
  provenOf: (folder: LeafFolder) => ProvenBackups | undefined,
  batch: RoundBatch,
  results: readonly LockResult[],
): void {
  const byBackup = groupByBackup(results);
  for (const { folder, report } of batch.reconciled) {
    const proven = provenOf(folder);
    if (proven === undefined) continue;
    const withdrawn = batch.withdrawn.has(folder.path);
    for (const json of report.unprovable ?? []) proven.unprove(folder.path, path.basename(json));
    for (const backup of report.provable) {
      const group = byBackup.get(backup.json) ?? [];
      if (withdrawn || group.some((r) => r.outcome.status !== 'ok' || !r.indexed)) {
        proven.unprove(folder.path, path.basename(backup.json));
        continue;
      }
      // The json's identity after the lock, when it was locked in this round.
      const identity = group.find((r) => r.request.unit === backup.json)?.identity ?? backup.identity;
      proven.prove(folder.path, path.basename(backup.json), identity);
    }
  }
}
