import path from 'node:path';
import type { RemoteContext } from '../context/remote-context.js';
import { AppError } from '../errors.js';
import { isInside } from '../paths.js';
import { isRealFolder } from '../remote/confine.js';
import type { Identity } from '../remote/identity.js';
import { examineAll, type Examined } from '../remote/read.js';
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

// Each candidate that can be a unit examined, a chunk through one walk from the root (remote/read.ts, examineAll);
// what examine would throw for one (a link on its path) is kept as its answer.
export async function checkCandidates(
  remote: RemoteContext,
  candidates: readonly LiftCandidate[],
  checks: UnlockChecks,
): Promise<Verdict[]> {
  const inside = candidates.filter((c) => isUnitPath(remote, c.path));
  const found = await examineAll(inside.map((c) => c.path));
  const examinedOf = new Map(inside.map((c, i) => [c, found[i]]));
  // Folders of this chunk found real so far: the units of one backup share all but their last folder.
  const real = new Set<string>();
  const verdicts: Verdict[] = [];
  for (const candidate of candidates)
    verdicts.push(await checkCandidate(remote, candidate, examinedOf.get(candidate), real, checks));
  return verdicts;
}

function isUnitPath(remote: RemoteContext, unit: string): boolean {
  return path.isAbsolute(unit) && isInside(unit, remote.root) && path.resolve(unit) !== path.resolve(remote.root);
}

// The index is trusted, the remote is not: the path must still be inside the root with no symlink on the way,
// and be the very file that was locked (inode and birth time: the device number can change across reboots).
async function checkCandidate(
  remote: RemoteContext,
  candidate: LiftCandidate,
  found: Examined | AppError | undefined,
  knownReal: Set<string>,
  checks: UnlockChecks,
): Promise<Verdict> {
  const { path: unit } = candidate;
  if (!isUnitPath(remote, unit))
    return { kind: 'suspicious', reason: `it is not inside the remote root ${remote.root}` };
  const real = await isRealFolder(remote, path.dirname(unit), knownReal);
  // A locked unit's folder cannot be removed, only renamed: keep the entries until it is back or lifted by hand.
  if (real === undefined)
    return {
      kind: 'missing',
      reason: `its folder ${path.dirname(unit)} is gone (renamed?); entries kept, the next pass tries again`,
    };
  if (!real) return { kind: 'suspicious', reason: 'a folder on its path is a symbolic link' };
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
