import type { AttributesAdapter, PathOutcome } from '../attributes/adapter.js';
import type { Clock } from '../clock.js';
import { lockedEntry, pendingEntry, type IndexEntry } from '../index/entry.js';
import type { Logger } from '../log/logger.js';
import { examine } from '../remote/read.js';
import type { LockRequest } from './context.js';

export interface LockResult {
  request: LockRequest;
  outcome: PathOutcome;
  indexed: boolean;
}

const WRITE_CONCURRENCY = 64;

// Write-ahead, then lock: every unit gets its index entry before chattr, so a crash never leaves an immutable unit nothing will lift.
// If the entry cannot be written the unit is locked all the same (when in doubt, protect) and the failure is logged.
export async function lockUnits(requests: readonly LockRequest[], attributes: AttributesAdapter, clock: Clock, log: Logger): Promise<LockResult[]> {
  const pending = new Map<LockRequest, IndexEntry>();
  await forEachLimited(requests, WRITE_CONCURRENCY, async (request) => {
    const entry = pendingEntry(entryRequestOf(request), clock.now());
    try {
      await request.remote.index.write(entry);
      pending.set(request, entry);
    } catch (err) {
      log.error({ err, path: request.unit, remote: request.remote.id }, 'index entry could not be written; locking the unit anyway (when in doubt, protect); run `xo-immutable-backups rebuild-index` once the index is writable');
    }
  });

  const outcomes = await attributes.setImmutable(requests.map((r) => ({ path: r.unit, recursive: r.recursive })), true);
  const byPath = new Map(outcomes.map((o) => [o.path, o]));

  const results: LockResult[] = [];
  await forEachLimited(requests, WRITE_CONCURRENCY, async (request) => {
    const outcome = byPath.get(request.unit) ?? { path: request.unit, status: 'failed', code: 'EUNKNOWN', message: 'no outcome reported' };
    const entry = pending.get(request);
    let indexed = false;
    if (outcome.status === 'ok' && entry !== undefined) {
      try {
        const examined = await examine(request.unit);
        if (examined !== undefined) {
          await request.remote.index.write(lockedEntry(entry, examined.identity, clock.now()));
          indexed = true;
        }
      } catch (err) {
        log.error({ err, path: request.unit, remote: request.remote.id }, 'unit locked but its index entry could not be completed; the next reconcile retries');
      }
    }
    results.push({ request, outcome, indexed });
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

async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
