import { lstatSync } from 'node:fs';
import type { AttributesAdapter, DirectoryLayout, PathOutcome } from '../attributes/adapter.js';
import type { Clock } from '../clock.js';
import type { RemoteContext } from '../context/remote-context.js';
import { lockedEntry, pendingEntry, type IndexEntry } from '../index/entry.js';
import { AppError } from '../errors.js';
import { identityOf, type Identity } from '../remote/identity.js';
import type { Logger } from '../log/logger.js';
import { vmOfPath } from '../holds/rules.js';
import type { LockRequest } from './context.js';
import {
  commitWindows,
  stageWindow,
  withdrawWindowsAhead,
  writeWindowsAhead,
  type MovedFrom,
  type Windowed,
} from './lock-windows.js';

// The outcome of a unit left alone because a repair lift holds its VM: not a failure, nothing to retry.
export const HELD = 'EHELD';

export interface LockResult {
  request: LockRequest;
  outcome: PathOutcome;
  indexed: boolean;
  // As the flag helper read it on what it locked, when indexed.
  identity?: Identity;
  // The unit was locked before at another path (moved): it keeps the latest of its windows.
  movedFrom?: MovedFrom;
  // Its entry was written ahead but no identity recorded (chattr failed, or the unit could not be read after).
  leftPending?: boolean;
}

// Write-ahead, then lock: every unit gets its index entry before chattr, so a crash never leaves an immutable unit
// nothing will lift. If the entry cannot be written the unit is locked all the same (when in doubt, protect).
export async function lockUnits(
  requests: readonly LockRequest[],
  attributes: AttributesAdapter,
  clock: Clock,
  log: Logger,
): Promise<LockResult[]> {
  const started = performance.now();
  const { requests: allowed, held } = withoutHeld(requests, clock.now());
  const byPath = new Map(held);
  const checkedHolds = performance.now();
  const stale = staleRedates(allowed);
  const pending = await writePendingEntries(allowed, stale, clock, log);
  const tPending = performance.now();
  const ahead = await writeWindowsAhead(allowed, log);
  const tAhead = performance.now();
  let written = 0;
  let locked = 0;
  const results: LockResult[] = [];
  try {
    await syncIndexes(allowed, log);
    written = performance.now();
    for (const [remote, mine] of byRemote(allowed)) {
      const targets = mine.filter((r) => !redate(r, stale, byPath));
      if (targets.length === 0) continue;
      const outcomes = await attributes.setImmutable(
        remote,
        targets.map((r) => ({ path: r.unit, recursive: r.recursive, layout: layoutOf(r) })),
        true,
      );
      for (const outcome of outcomes) byPath.set(outcome.path, outcome);
    }
    locked = performance.now();
    warnOfRefusals(allowed, byPath, log);
    const windows: Windowed[] = [];
    for (const request of requests)
      windows.push(await stageWindow(request, byPath.get(request.unit) ?? noOutcome(request.unit), log));
    await withdrawWindowsAhead(ahead, windows, log);
    await commitWindows(windows, log);
    for (const windowed of windows)
      results.push(await completeEntry(windowed, pending.get(windowed.request), clock, log));
  } finally {
    // The descriptors kept for completions that did not come (a unit not locked, a failure).
    for (const remote of new Set(allowed.map((r) => r.remote))) remote.index.release();
  }
  logBatchTimes(requests, [started, checkedHolds, tPending, tAhead, written, locked, performance.now()], log);
  return results;
}

// Where a batch's time goes, for tuning (the benchmark reads it with logLevel debug): `marks` are the moments each
// stage ended, from the batch's start to its end. entriesMs is the sum of pendingMs, aheadMs and syncMs.
function logBatchTimes(requests: readonly LockRequest[], marks: readonly number[], log: Logger): void {
  const [started, holds, pending, ahead, written, locked, done] = marks;
  const ms = (from = 0, to = 0): number => Math.round(to - from);
  log.debug(
    {
      units: requests.length,
      redated: requests.filter((r) => r.lockedAs !== undefined).length,
      holdsMs: ms(started, holds),
      pendingMs: ms(holds, pending),
      aheadMs: ms(pending, ahead),
      syncMs: ms(ahead, written),
      entriesMs: ms(holds, written),
      chattrMs: ms(written, locked),
      completeMs: ms(locked, done),
    },
    `lock batch of ${requests.length} unit(s)`,
  );
}

// What the flag helper refuses because of what the remote holds, not how the filesystem answered: a directory unit
// with foreign content inside (EFOREIGN), a file where a directory was checked or the reverse (EKIND), a folder on the
// way that is a symbolic link or a root that no longer resolves where it did (ECONFINE: its message names the folder).
// The helper walks from the root without following a link, so it is the one check of where a flag is changed.
const SECURITY_CODES = new Set(['EFOREIGN', 'EKIND', 'ECONFINE']);

// Said as a security warning naming the entry; the unit is not recorded as locked and its folder is tried again. A
// unit the helper locked all the same (a second name, or what XO never writes inside) is said too: it is recorded as
// locked, and lift refuses to clear it while that is there, for an admin to look at.
function warnOfRefusals(requests: readonly LockRequest[], byPath: ReadonlyMap<string, PathOutcome>, log: Logger): void {
  for (const request of requests) {
    const outcome = byPath.get(request.unit);
    if (outcome?.status === 'ok' && outcome.warning !== undefined)
      log.warn(
        { remote: request.remote.id, path: request.unit, code: outcome.warning.code, security: true },
        `${request.unit} locked, but it is not as XO writes it: ${outcome.warning.message}; ` +
          'find out who can write to the remote',
      );
    if (outcome?.status !== 'failed' || !SECURITY_CODES.has(outcome.code)) continue;
    log.warn(
      { remote: request.remote.id, path: request.unit, code: outcome.code, security: true },
      `${request.unit} not locked: ${outcome.message}`,
    );
  }
}

// A repair lift writes its hold, waits for the daemon to acknowledge it between two lock batches, then unlocks: a
// batch reconciled before the hold was written is checked here, in its turn, so it cannot lock the VM again.
function withoutHeld(
  requests: readonly LockRequest[],
  now: number,
): { requests: LockRequest[]; held: Map<string, PathOutcome> } {
  const held = new Map<string, PathOutcome>();
  const heldVms = new Map<string, boolean>();
  const kept: LockRequest[] = [];
  for (const request of requests) {
    const vm = request.kind === 'vm' ? vmOfPath(request.remote.root, request.unit) : undefined;
    const key = `${request.remote.id}/${vm}`;
    if (vm !== undefined && !heldVms.has(key))
      heldVms.set(key, request.remote.index.holds.heldUntil(vm, now) !== undefined);
    if (vm === undefined || heldVms.get(key) !== true) kept.push(request);
    else held.set(request.unit, { path: request.unit, status: 'failed', code: HELD, message: `VM ${vm} is held` });
  }
  return { requests: kept, held };
}

// The pending entries written, by request; a request whose entry could not be written is logged and left out.
async function writePendingEntries(
  allowed: readonly LockRequest[],
  stale: ReadonlySet<LockRequest>,
  clock: Clock,
  log: Logger,
): Promise<Map<LockRequest, IndexEntry>> {
  const pending = new Map<LockRequest, IndexEntry>();
  // Refused by the cap on index entries: one line per remote and batch, not one per unit of a flood.
  const full = new Map<RemoteContext, { first: AppError; units: number }>();
  for (const request of allowed) {
    const entry = pendingEntry(entryRequestOf(request), clock.now());
    // Already locked and indexed: its entry goes from the older backup to this one in one write, at completion.
    if (request.lockedAs !== undefined && !stale.has(request)) {
      pending.set(request, entry);
      continue;
    }
    try {
      // Its descriptor kept open for the completion (lockUnits releases what is left).
      await request.remote.index.write(entry, true);
      pending.set(request, entry);
    } catch (err) {
      if (err instanceof AppError && err.code === 'INDEX_FULL') {
        const seen = full.get(request.remote);
        if (seen === undefined) full.set(request.remote, { first: err, units: 1 });
        else seen.units++;
        continue;
      }
      log.error(
        { err, path: request.unit, remote: request.remote.id },
        'index entry could not be written; locking the unit anyway (when in doubt, protect); ' +
          'run `xo-immutable-backups rebuild-index` once the index is writable',
      );
    }
  }
  for (const [remote, { first, units }] of full)
    log.error(
      { remote: remote.id, units, path: first.value, cap: 'maxIndexEntries', hint: first.hint },
      `${units} unit(s) locked without an index entry (when in doubt, protect): ${first.message}; ` +
        'lift will not unlock them',
    );
  return pending;
}

// Write-ahead means on disk: the batch's entries (and their day folders) and the windows written ahead are synced once,
// all together, before chattr runs. Their completions (the identities) are synced by the next batch, or before the proven backups are saved
// (every minute): lost, they leave pending entries, which the full proof at start-up completes again.
// A sync that fails is logged; the units are locked all the same.
async function syncIndexes(requests: readonly LockRequest[], log: Logger): Promise<void> {
  for (const remote of new Set(requests.map((r) => r.remote))) {
    try {
      await remote.index.sync();
    } catch (err) {
      log.error(
        { err, remote: remote.id },
        'index entries could not be synced to disk; locking anyway (when in doubt, protect): ' +
          'after a power loss run `xo-immutable-backups rebuild-index`',
      );
    }
  }
}

// A directory unit of a VM backup is a VHD directory; of a config or pool backup, its date folder. The helper accepts
// nothing else inside it (docs/security.md, "foreign content").
function layoutOf(request: LockRequest): DirectoryLayout | undefined {
  if (!request.recursive) return undefined;
  return request.kind === 'vm' ? 'vhd-directory' : 'date-folder';
}

// Completes a locked unit's pending entry with the identity its window was staged with, once that window is durable.
async function completeEntry(
  { request, outcome, identity: locked, movedFrom }: Windowed,
  entry: IndexEntry | undefined,
  clock: Clock,
  log: Logger,
): Promise<LockResult> {
  let indexed = false;
  let identity: Identity | undefined;
  if (locked !== undefined && entry !== undefined) {
    try {
      await request.remote.index.write(lockedEntry(entry, locked, clock.now()));
      indexed = true;
      identity = locked;
    } catch (err) {
      log.error(
        { err, path: request.unit, remote: request.remote.id },
        'unit locked but its index entry could not be completed; the next reconcile retries',
      );
    }
  }
  return { request, outcome, indexed, identity, movedFrom, leftPending: entry !== undefined && !indexed };
}

// A unit found locked as indexed for an older backup (protect/request.ts, lockedForOlder) keeps its flag: it is
// reported locked as it was found, so its window and entry are re-dated without a flag-helper walk to it.
function redate(request: LockRequest, stale: ReadonlySet<LockRequest>, byPath: Map<string, PathOutcome>): boolean {
  if (request.lockedAs === undefined || stale.has(request)) return false;
  const identity = { ...request.lockedAs, birthtimeNs: request.lockedAs.birthtimeNs ?? '0' };
  byPath.set(request.unit, { path: request.unit, status: 'ok', identity });
  return true;
}

// The re-datings whose unit is no longer as its reconcile found it locked: a lift pass runs between a round's reconcile
// and its batch (the next round is reconciled while one locks), and clearing a flag changes the ctime. Those go
// through the flag helper like any unit. One lstat each, in the batch's turn, where no lift runs: the same inode with
// the same ctime has had no flag cleared since.
function staleRedates(requests: readonly LockRequest[]): Set<LockRequest> {
  const stale = new Set<LockRequest>();
  for (const request of requests) {
    if (request.lockedAs === undefined) continue;
    let now: Identity | undefined;
    try {
      const stats = lstatSync(request.unit, { bigint: true, throwIfNoEntry: false });
      now = stats === undefined ? undefined : identityOf(stats);
    } catch {
      now = undefined;
    }
    const { dev, ino, ctimeNs } = request.lockedAs;
    if (now?.dev !== dev || now.ino !== ino || now.ctimeNs !== ctimeNs) stale.add(request);
  }
  return stale;
}

// A round can hold units of several remotes; each is walked from its own root.
function byRemote(requests: readonly LockRequest[]): Map<RemoteContext, LockRequest[]> {
  const groups = new Map<RemoteContext, LockRequest[]>();
  for (const request of requests) {
    const group = groups.get(request.remote);
    if (group === undefined) groups.set(request.remote, [request]);
    else group.push(request);
  }
  return groups;
}

function noOutcome(unit: string): PathOutcome {
  return { path: unit, status: 'failed', code: 'EUNKNOWN', message: 'no outcome reported' };
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
