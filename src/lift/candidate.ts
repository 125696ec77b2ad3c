import path from 'node:path';
import type { RemoteContext } from '../context/remote-context.js';
import { yieldIfDue } from '../concurrency.js';
import { AppError, errnoCode } from '../errors.js';
import { isInside } from '../paths.js';
import { isPlainlyBelow, linkOnPath, NotAFolder, parentOf, withHeldRemote } from '../remote/held.js';
import type { Identity } from '../remote/identity.js';
import { examineIn, relativeIn, type Examined } from '../remote/read.js';
import type { LiftCandidate } from './plan.js';

export type Verdict =
  | { kind: 'ok'; recursive: boolean }
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
}

// Each candidate that can be a unit examined, a chunk through one walk from the root (remote/held.ts): a folder on
// its way that is a symbolic link is never followed, and is its answer, as is a folder gone.
export async function checkCandidates(
  remote: RemoteContext,
  candidates: readonly LiftCandidate[],
  checks: UnlockChecks,
): Promise<Verdict[]> {
  const inside = candidates.filter((c) => isUnitPath(remote, c.path));
  const found = await examineUnits(
    remote,
    inside.map((c) => c.path),
  );
  const examinedOf = new Map(inside.map((c, i) => [c, found[i]]));
  const verdicts: Verdict[] = [];
  for (const candidate of candidates)
    verdicts.push(await checkCandidate(remote, candidate, examinedOf.get(candidate), checks));
  return verdicts;
}

function isUnitPath(remote: RemoteContext, unit: string): boolean {
  return unit !== remote.root && isPlainlyBelow(remote.root, unit);
}

// What a unit is; FOLDER_GONE when its folder is (or is a file); REMOTE_LINK_ON_PATH for a folder on its way that is a
// symbolic link, or a root that no longer resolves where it did at start.
type Found = Examined | undefined | typeof FOLDER_GONE | AppError;
const FOLDER_GONE = 'folder gone';

// In path order, so that the units of a folder follow each other and its descriptor is still held (a chunk's index
// order scatters them, and the held tree keeps a bounded number of folders open).
async function examineUnits(remote: RemoteContext, units: readonly string[]): Promise<Found[]> {
  const order = units.map((_, i) => i).sort((a, b) => (units[a]! < units[b]! ? -1 : units[a]! > units[b]! ? 1 : 0));
  try {
    return await withHeldRemote(remote, async (held) => {
      const found = new Array<Found>(units.length);
      for (const i of order) {
        await yieldIfDue();
        const unit = units[i]!;
        const relative = relativeIn(held, unit);
        try {
          found[i] = held.folder(parentOf(relative)) === undefined ? FOLDER_GONE : examineIn(held, relative);
        } catch (error) {
          if (!(error instanceof NotAFolder)) throw error;
          found[i] = error.reason === 'not a folder' ? FOLDER_GONE : linkOnPath(unit, error);
        }
      }
      return found;
    });
  } catch (error) {
    // The root itself: not where it was at start (a link), or gone.
    if (error instanceof AppError) return units.map(() => error);
    if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') return units.map(() => FOLDER_GONE);
    throw error;
  }
}

// The index is trusted, the remote is not: the path must still be inside the root with no symlink on the way,
// and be the very file that was locked (inode and birth time: the device number can change across reboots).
async function checkCandidate(
  remote: RemoteContext,
  candidate: LiftCandidate,
  found: Found,
  checks: UnlockChecks,
): Promise<Verdict> {
  const { path: unit } = candidate;
  if (!isUnitPath(remote, unit))
    return { kind: 'suspicious', reason: `it is not inside the remote root ${remote.root}` };
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
  const held = checks.all ? undefined : await heldReason(remote, candidate, examined.identity, checks);
  if (held !== undefined) return { kind: 'suspicious', reason: held };
  return { kind: 'ok', recursive: candidate.recursive || examined.type === 'directory' };
}

// An entry never completed with an identity cannot show it is the unit that was locked; a unit locked for a later
// window under another path (moved, or named again by an earlier-dated alias or json) keeps that window.
async function heldReason(
  remote: RemoteContext,
  candidate: LiftCandidate,
  found: Identity,
  { now, repairOf }: UnlockChecks,
): Promise<string | undefined> {
  if (candidate.identity === undefined)
    return (
      'its identity was never recorded (a lock that did not complete), so it cannot be shown to be the unit locked; ' +
      'check it, then unlock it by hand (chattr -i) or with lift --all'
    );
  const window = await remote.index.windows.read(found);
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
