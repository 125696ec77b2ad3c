import path from 'node:path';
import type { AttributesAdapter, PathOutcome } from '../attributes/adapter.js';
import type { Clock } from '../clock.js';
import { forEachLimited, mapLimited } from '../concurrency.js';
import { lockedEntry, pendingEntry, type Identity, type IndexEntry } from '../index/entry.js';
import type { Logger } from '../log/logger.js';
import { isRealFolder } from '../remote/confine.js';
import { examine } from '../remote/read.js';
import type { LockRequest } from './context.js';

export interface LockResult {
  request: LockRequest;
  outcome: PathOutcome;
  indexed: boolean;
  // As read right after the lock, when indexed.
  identity?: Identity;
}

const WRITE_CONCURRENCY = 64;

// Write-ahead, then lock: every unit gets its index entry before chattr, so a crash never leaves an immutable unit nothing will lift.
// If the entry cannot be written the unit is locked all the same (when in doubt, protect) and the failure is logged.
export async function lockUnits(requests: readonly LockRequest[], attributes: AttributesAdapter, clock: Clock, log: Logger): Promise<LockResult[]> {
  // Checked again right before chattr, which follows symlinked parents: a folder swapped for a link since the
  // reconcile must not lead it out of the remote.
  const parents = [...new Map(requests.map((r) => [path.dirname(r.unit), r.remote])).entries()];
  const real = new Map(await mapLimited(parents, WRITE_CONCURRENCY, async ([parent, remote]) => [parent, await isRealFolder(remote, parent)] as const));
  const allowed: LockRequest[] = [];
  const byPath = new Map<string, PathOutcome>();
  for (const request of requests) {
    const parent = path.dirname(request.unit);
    if (real.get(parent) === true) allowed.push(request);
    else byPath.set(request.unit, { path: request.unit, status: 'failed', code: 'ECONFINE', message: `not locked: ${parent} is no longer a real folder of the remote (a symbolic link?)` });
  }
  const pending = new Map<LockRequest, IndexEntry>();
  await forEachLimited(allowed, WRITE_CONCURRENCY, async (request) => {
    const entry = pendingEntry(entryRequestOf(request), clock.now());
    try {
      await request.remote.index.write(entry);
      pending.set(request, entry);
    } catch (err) {
      log.error({ err, path: request.unit, remote: request.remote.id }, 'index entry could not be written; locking the unit anyway (when in doubt, protect); run `xo-immutable-backups rebuild-index` once the index is writable');
    }
  });

  const outcomes = await attributes.setImmutable(allowed.map((r) => ({ path: r.unit, recursive: r.recursive })), true);
  for (const outcome of outcomes) byPath.set(outcome.path, outcome);

  const results: LockResult[] = [];
  await forEachLimited(requests, WRITE_CONCURRENCY, async (request) => {
    const outcome = byPath.get(request.unit) ?? { path: request.unit, status: 'failed', code: 'EUNKNOWN', message: 'no outcome reported' };
    const entry = pending.get(request);
    let indexed = false;
    let identity: Identity | undefined;
    if (outcome.status === 'ok' && entry !== undefined) {
      try {
        const examined = await examine(request.unit);
        if (examined !== undefined) {
          await request.remote.index.write(lockedEntry(entry, examined.identity, clock.now()));
          indexed = true;
          identity = examined.identity;
        }
      } catch (err) {
        log.error({ err, path: request.unit, remote: request.remote.id }, 'unit locked but its index entry could not be completed; the next reconcile retries');
      }
    }
    results.push({ request, outcome, indexed, identity });
  });
  return results;
}

function entryRequestOf(request: LockRequest) {
  return {
    remote: request.remote.id,
    path: request.unit,
    kind: request.kind,
    recursive: request.recursive,
    backup: request.backup.label,
    backupInstant: request.backup.instant,
  };
}
