import path from 'node:path';
import type { PathOutcome } from '../attributes/adapter.js';
import type { Logger } from '../log/logger.js';
import { parseBackupDatetime } from '../remote/datetime.js';
import type { WindowAhead } from '../index/windows.js';
import type { Identity } from '../remote/identity.js';
import type { LockRequest } from './context.js';

// The lock batch's window stage (protect/locker.ts): once the flag is set, each unit's window by identity is staged
// where it needs one, then every remote's staged windows are made durable together, before any entry is completed.

// A unit locked before at another path (moved): it keeps the latest of its windows.
export interface MovedFrom {
  path: string;
  until: number;
}

// A unit as chattr left it, with its window by identity staged where it needs one.
export interface Windowed {
  request: LockRequest;
  outcome: PathOutcome;
  // The identity the flag helper read on the descriptor it locked, once its window (if any) is staged.
  identity?: Identity;
  movedFrom?: MovedFrom;
  // Whether a window record was staged for it: made durable by commitWindows before its entry is completed.
  staged: boolean;
}

// Stages the window of a locked unit by the identity the flag helper read on the descriptor it locked: never a fresh
// walk by path, which could find something swapped in since (docs/security.md, "kind swap"). The window is recorded
// whether or not the entry was written (the index cap, a full disk).
export async function stageWindow(request: LockRequest, outcome: PathOutcome, log: Logger): Promise<Windowed> {
  if (outcome.status !== 'ok') return { request, outcome, staged: false };
  if (outcome.identity === undefined) {
    log.error(
      { path: request.unit, remote: request.remote.id },
      'unit locked but the flag helper returned no identity; its entry stays pending and the next reconcile retries',
    );
    return { request, outcome, staged: false };
  }
  try {
    const window = await recordWindow(request, outcome.identity);
    return { request, outcome, identity: outcome.identity, staged: window.staged, movedFrom: window.movedFrom };
  } catch (err) {
    log.error(
      { err, path: request.unit, remote: request.remote.id },
      'unit locked but its window could not be recorded; the next reconcile retries',
    );
    return { request, outcome, staged: false };
  }
}

// Group commit: every window staged by this batch reaches the disk in one step per remote, before any of their units'
// entries is completed (a power loss must never shorten a window, nor leave a completed entry without it). A remote
// whose commit fails leaves its staged units pending: the next reconcile locks and records them again.
export async function commitWindows(windows: Windowed[], log: Logger): Promise<void> {
  for (const remote of new Set(windows.filter((w) => w.staged).map((w) => w.request.remote))) {
    try {
      await remote.index.windows.commit();
    } catch (err) {
      log.error(
        { err, remote: remote.id },
        'windows of locked units could not be made durable; their entries stay pending and the next reconcile retries',
      );
      for (const windowed of windows)
        if (windowed.staged && windowed.request.remote === remote) {
          delete windowed.identity;
          delete windowed.movedFrom;
        }
    }
  }
}

// Write-ahead of the batch's windows, before its entries' group commit and the flag: each unit's window by the identity
// its reconcile examined (index/windows.ts, writeAhead). stageWindow after the lock, by the identity the helper
// locked, finds the same record and stages nothing: the completion then waits for no disk round trip of its own. A
// unit swapped meanwhile has its window staged after the lock as before. A failure is no loss: the same.
// Returns, by remote, the names of the records it created (withdrawWindowsAhead).
export async function writeWindowsAhead(
  requests: readonly LockRequest[],
  log: Logger,
): Promise<Map<LockRequest['remote'], string[]>> {
  const written = new Map<LockRequest['remote'], string[]>();
  const byRemote = new Map<LockRequest['remote'], WindowAhead[]>();
  for (const request of requests) {
    const identity = request.lockedAs ?? request.examined;
    const window = identity === undefined ? undefined : windowToRecord(request);
    if (identity === undefined || window === undefined) continue;
    const ahead = { identity, until: window.until, path: request.unit, arrived: window.arrived };
    const list = byRemote.get(request.remote);
    if (list === undefined) byRemote.set(request.remote, [ahead]);
    else list.push(ahead);
  }
  for (const [remote, windows] of byRemote)
    try {
      written.set(remote, await remote.index.windows.writeAhead(windows));
    } catch (err) {
      log.debug({ err, remote: remote.id }, 'windows not written ahead; recorded after the lock');
    }
  return written;
}

// After the lock: the records written ahead for an inode the flag helper did not lock are taken back (index/windows.ts,
// withdrawAhead). One that cannot be stays: logged.
export async function withdrawWindowsAhead(
  written: ReadonlyMap<LockRequest['remote'], string[]>,
  windows: readonly Windowed[],
  log: Logger,
): Promise<void> {
  for (const [remote, names] of written) {
    const locked = windows.flatMap((w) =>
      w.request.remote === remote && w.outcome.status === 'ok' && w.outcome.identity !== undefined
        ? [w.outcome.identity]
        : [],
    );
    try {
      await remote.index.windows.withdrawAhead(names, locked);
    } catch (err) {
      log.warn({ err, remote: remote.id }, 'a window record written ahead for a unit not locked could not be removed');
    }
  }
}

// A unit keeps its own name while locked (an immutable entry cannot be renamed), and lift never unlocks it before its
// name's datetime has left the window. Only a window later than that (an arrival, a merged base, a chain's older VHD,
// a name without a datetime) needs recording by identity, so that moving its folder cannot shorten it
// (docs/security.md); a backup's json or date folder records its arrival in the same record (protect/arrival.ts).
// Staged, not yet durable: commitWindows makes the batch's windows durable together.
async function recordWindow(
  request: LockRequest,
  identity: Identity,
): Promise<{ staged: boolean; movedFrom?: MovedFrom }> {
  const window = windowToRecord(request);
  if (window === undefined) return { staged: false };
  const before = await request.remote.index.windows.extend(identity, window.until, request.unit, window.arrived);
  return { staged: true, ...(before !== undefined && before.path !== request.unit ? { movedFrom: before } : {}) };
}

// Pure: the window a locked unit needs recorded by identity (see recordWindow), or undefined when its name says it.
function windowToRecord(request: LockRequest): { until: number; arrived?: number } | undefined {
  const named = parseBackupDatetime(path.basename(request.unit));
  const arrived = request.unit === request.backup.label ? request.backup.arrived : undefined;
  // A name in the future gives no window at lift (lift/plan.ts): its window from arrival is recorded here.
  if (
    arrived === undefined &&
    named !== undefined &&
    request.backup.instant <= named &&
    request.backup.namedInTheFuture !== true
  )
    return undefined;
  return { until: request.backup.instant + request.remote.windowMs, arrived };
}
