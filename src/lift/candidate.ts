import path from 'node:path';
import { checksBirthTime } from '../attributes/protocol.js';
import type { RemoteContext } from '../context/remote-context.js';
import { yieldIfDue } from '../concurrency.js';
import { AppError, errnoCode } from '../errors.js';
import { isInside } from '../paths.js';
import { HeldRemote, isPlainlyBelow, linkOnPath, NotAFolder, parentOf } from '../remote/held.js';
import type { Identity } from '../remote/identity.js';
import type { UnitWindow } from '../index/window-record.js';
import { examineIn, relativeIn, type Examined } from '../remote/read.js';
import type { LiftCandidate } from './plan.js';

export type Verdict =
  // orDirectory: decided by the flag helper from what it opens (a directory is held to the unit's layout).
  | { kind: 'ok'; recursive: boolean; orDirectory: boolean }
  | { kind: 'vanished' }
  | { kind: 'missing'; reason: string }
  | { kind: 'suspicious'; reason: string };

export interface UnlockChecks {
  now: number;
  // lift --all (decommissioning): every unit goes, whatever its window or record.
  all: boolean;
  // hold start (a repair lift): the VM folder whose units go whatever their window, unless the unit was locked under
  // another VM's folder (moved in: it keeps that window).
  repairOf?: string;
  // Nothing is cleared: every candidate is examined here, then checked by the flag helper as it would clear it.
  dryRun: boolean;
}

// Each candidate judged. A real lift leaves the check of what is at the path to the flag helper, which walks to it
// anyway to clear it: each unit goes with the identity its entry recorded, and the helper clears that file or refuses
// (libexec/xo-immutable-flags.pl: a link on the way, a link or special file, another inode or birth time, a folder
// gone), so only the window by identity is looked up here, by the identity recorded, with no I/O on the remote. The
// others are examined here first: in a dry run, and where the recorded identity cannot key the window record the lock
// wrote (no identity, or no birth time: see helperChecks).
export async function checkCandidates(
  remote: RemoteContext,
  candidates: readonly LiftCandidate[],
  checks: UnlockChecks,
): Promise<Verdict[]> {
  const verdicts = new Array<Verdict>(candidates.length);
  const inside: number[] = [];
  for (const [i, candidate] of candidates.entries()) {
    // A window record listed is read from disk: the daemon's other work gets its turns.
    if (i % SLICE_UNITS === 0) await yieldIfDue();
    if (!isUnitPath(remote, candidate.path))
      verdicts[i] = { kind: 'suspicious', reason: `it is not inside the remote root ${remote.root}` };
    else if (helperChecks(candidate, checks)) verdicts[i] = judgeRecorded(remote, candidate, checks);
    else inside.push(i);
  }
  if (inside.length > 0) await examineCandidates(remote, candidates, inside, checks, verdicts);
  return verdicts;
}

// Whether the flag helper's check stands for the examine. The window record was written under the identity the
// helper read when it locked (protect/lock-windows.ts), which the entry records too, with a birth time; an entry
// without one (older releases, and a re-dating of such an entry: protect/locker.ts, redate) can name a record other
// than the one written for the file found (index/window-record.ts, nameOf), so the file found is examined and both
// are looked up. An entry without an identity is examined as before: refused, unless its unit is gone.
function helperChecks(candidate: LiftCandidate, checks: UnlockChecks): boolean {
  if (checks.dryRun) return false;
  if (checks.all) return true;
  return checksBirthTime(candidate.identity?.birthtimeNs);
}

// A unit the flag helper checks: only its window by the identity recorded, which the helper then holds the file to.
function judgeRecorded(remote: RemoteContext, candidate: LiftCandidate, checks: UnlockChecks): Verdict {
  const held = checks.all ? undefined : heldReason(remote, candidate, [], checks);
  if (held !== undefined) return { kind: 'suspicious', reason: held };
  return { kind: 'ok', recursive: candidate.recursive, orDirectory: !candidate.recursive };
}

// The candidates at `inside` examined and judged, through one walk from the root (remote/held.ts) in path order: a
// folder on its way that is a symbolic link is never followed, and is its answer, as is a folder gone. Synchronous
// between slices: a lift is a command, and the thread pool's hop costs more than these calls (docs/performance.md).
async function examineCandidates(
  remote: RemoteContext,
  candidates: readonly LiftCandidate[],
  inside: number[],
  checks: UnlockChecks,
  verdicts: Verdict[],
): Promise<void> {
  // In path order, so that the units of a folder follow each other and its descriptor is still held (a chunk's index
  // order scatters them, and the held tree keeps a bounded number of folders open).
  inside.sort((a, b) => compare(candidates[a]!.path, candidates[b]!.path));
  let held: HeldRemote;
  try {
    held = HeldRemote.open(remote);
  } catch (error) {
    // The root itself: not where it was at start (a link), or gone.
    const found = rootFailure(error);
    for (const i of inside) verdicts[i] = checkCandidate(remote, candidates[i]!, found, checks);
    return;
  }
  try {
    for (let n = 0; n < inside.length; n++) {
      if (n % SLICE_UNITS === 0) await yieldIfDue();
      const i = inside[n]!;
      verdicts[i] = checkCandidate(remote, candidates[i]!, examineUnit(held, candidates[i]!.path), checks);
    }
  } finally {
    held.close();
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// Units judged between two looks at the clock (yieldIfDue): each is a few system calls at most.
const SLICE_UNITS = 32;

function isUnitPath(remote: RemoteContext, unit: string): boolean {
  return unit !== remote.root && isPlainlyBelow(remote.root, unit);
}

// What a unit is; FOLDER_GONE when its folder is (or is a file); REMOTE_LINK_ON_PATH for a folder on its way that is a
// symbolic link, or a root that no longer resolves where it did at start.
type Found = Examined | undefined | typeof FOLDER_GONE | AppError;
const FOLDER_GONE = 'folder gone';

function examineUnit(held: HeldRemote, unit: string): Found {
  const relative = relativeIn(held, unit);
  try {
    return held.folder(parentOf(relative)) === undefined ? FOLDER_GONE : examineIn(held, relative);
  } catch (error) {
    if (error instanceof NotAFolder) return error.reason === 'not a folder' ? FOLDER_GONE : linkOnPath(unit, error);
    const code = errnoCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return FOLDER_GONE;
    throw error;
  }
}

function rootFailure(error: unknown): Found {
  if (error instanceof AppError) return error;
  if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') return FOLDER_GONE;
  throw error;
}

// The index is trusted, the remote is not: the path must still be inside the root with no symlink on the way,
// and be the very file that was locked (inode and birth time: the device number can change across reboots).
function checkCandidate(remote: RemoteContext, candidate: LiftCandidate, found: Found, checks: UnlockChecks): Verdict {
  const { path: unit } = candidate;
  // A locked unit's folder cannot be removed, only renamed: keep the entries until it is back or lifted by hand.
  if (found === FOLDER_GONE)
    return {
      kind: 'missing',
      reason: `its folder ${path.dirname(unit)} is gone (renamed?); entries kept, the next pass tries again`,
    };
  if (found instanceof AppError) return { kind: 'suspicious', reason: 'a folder on its path is a symbolic link' };
  const examined = found;
  if (examined === undefined) return { kind: 'vanished' };
  if (examined.type === 'symlink' || examined.type === 'other')
    return {
      kind: 'suspicious',
      reason: `it is now a ${examined.type === 'symlink' ? 'symbolic link' : 'special file'}`,
    };
  const swapped = swapReason(candidate.identity, examined.identity);
  if (swapped !== undefined) return { kind: 'suspicious', reason: swapped };
  // Locked all the same with a second name: the flag helper never clears it (ELINKS), a dry run says so too.
  if (examined.type === 'file' && examined.links > 1)
    return { kind: 'suspicious', reason: `it has ${examined.links} hard links: never unlocked while they stay` };
  const held = checks.all ? undefined : heldReason(remote, candidate, [examined.identity], checks);
  if (held !== undefined) return { kind: 'suspicious', reason: held };
  return { kind: 'ok', recursive: candidate.recursive || examined.type === 'directory', orDirectory: false };
}

// An entry never completed with an identity cannot show it is the unit that was locked; a unit locked for a later
// window under another path (moved, or named again by an earlier-dated alias or json) keeps that window: its record
// is looked up by the identity recorded, and by the one found where the unit was examined.
function heldReason(
  remote: RemoteContext,
  candidate: LiftCandidate,
  found: readonly Identity[],
  { now, repairOf }: UnlockChecks,
): string | undefined {
  if (candidate.identity === undefined)
    return (
      'its identity was never recorded (a lock that did not complete), so it cannot be shown to be the unit locked; ' +
      'check it, then unlock it by hand (chattr -i) or with lift --all'
    );
  let window: UnitWindow | undefined;
  for (const identity of [candidate.identity, ...found]) {
    const record = remote.index.windows.readNow(identity);
    if (record !== undefined && (window === undefined || record.until > window.until)) window = record;
  }
  if (window === undefined || window.until <= now) return undefined;
  // The window stays recorded: once the repair lift's hold ends, the unit is locked for it again.
  if (repairOf !== undefined && isInside(window.path, repairOf)) return undefined;
  const until = Number.isFinite(window.until) ? new Date(window.until).toISOString() : 'an unreadable date';
  return `it is the unit locked at ${window.path} until ${until} (moved?): it keeps that window`;
}

// Why the file found is not the one that was locked, or undefined when it is (or nothing was recorded).
function swapReason(recorded: Identity | undefined, found: Identity): string | undefined {
  if (recorded === undefined) return undefined;
  const reborn =
    recorded.birthtimeNs !== undefined &&
    recorded.birthtimeNs !== '0' &&
    found.birthtimeNs !== '0' &&
    recorded.birthtimeNs !== found.birthtimeNs;
  if (recorded.ino === found.ino && !reborn) return undefined;
  return (
    `it is not the file that was locked (inode/birth ${found.ino}/${found.birthtimeNs ?? '?'}, ` +
    `recorded ${recorded.ino}/${recorded.birthtimeNs ?? '?'}); ` +
    'check it, then unlock it by hand (chattr -i) or with lift --all'
  );
}
