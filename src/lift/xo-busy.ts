import { lstatSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { errnoCode } from '../errors.js';
import { isPlainlyBelow } from '../remote/held.js';
import type { LiftCandidate } from './plan.js';

// XO's local, NFS and SMB handlers lock a VM folder with proper-lockfile, which keeps the `<vm>.lock` folder's
// mtime fresh every 5 s and calls it stale after 10 s; a minute leaves room for the NFS client's clock.
const HELD_MS = 60_000;

// Pure: whether a lock folder with this mtime is held now. One far from now either way (stale, or an mtime an
// attacker set) is not: it never holds a lift back for longer than XO's own lock would.
export function isHeldAt(mtimeMs: number, now: number): boolean {
  return Math.abs(now - mtimeMs) < HELD_MS;
}

// Pure: the lock folder XO holds while it runs on the VM folder a unit lives in (`xo-vm-backups/<vm>.lock`), or
// undefined for units outside a VM folder (config and pool metadata: XO runs no cleanVm there).
export function xoLockOf(root: string, unit: string): string | undefined {
  // A plain path (as the index writes them) without path.relative: this runs for every unit of a chunk, twice.
  if (isPlainlyBelow(root, unit)) {
    const vms = `${root}/xo-vm-backups/`;
    const end = unit.indexOf('/', vms.length);
    if (!unit.startsWith(vms) || end < 0) return undefined;
    const vm = unit.slice(vms.length, end);
    return vm.startsWith('.') || vm.endsWith('.lock') ? undefined : `${vms}${vm}.lock`;
  }
  const relative = path.relative(root, unit).split(path.sep);
  if (relative.length < 3 || relative[0] !== 'xo-vm-backups') return undefined;
  const vm = relative[1]!;
  if (vm === '' || vm.startsWith('.') || vm.endsWith('.lock')) return undefined;
  return path.join(root, 'xo-vm-backups', `${vm}.lock`);
}

// XO's cleanVm opens a VM's disks first and unlinks the jsons of the backups it found broken last, seconds later on a
// flat remote (each locked VHD costs XO 3.8 s of retries). A lift between the two unlocks a backup cleanVm already
// judged broken, and cleanVm then deletes it (docs/xo-remote-layout.md). So a VM folder XO holds is not lifted: its
// units wait for the next pass, locked. The lock's freshness is a fact of the machine's clock, the one its mtime is
// written with, whatever clock the lift decides windows by.
export function deferWhileXoRuns(
  root: string,
  candidates: readonly LiftCandidate[],
  now: number = Date.now(),
): { unlock: LiftCandidate[]; deferred: LiftCandidate[] } {
  const held = new Map<string, boolean>();
  let locks: Set<string> | undefined | null = null;
  const isHeld = (lock: string): boolean => {
    let known = held.get(lock);
    if (known === undefined) {
      // The lock folders listed once (most VM folders have none, and a chunk spans thousands), then each one's mtime.
      if (locks === null) locks = lockNames(root);
      const mtime = locks?.has(path.basename(lock)) === false ? undefined : lockMtime(lock);
      known = mtime !== undefined && isHeldAt(mtime, now);
      held.set(lock, known);
    }
    return known;
  };
  const unlock: LiftCandidate[] = [];
  const deferred: LiftCandidate[] = [];
  for (const candidate of candidates) {
    const lock = xoLockOf(root, candidate.path);
    if (lock !== undefined && isHeld(lock)) deferred.push(candidate);
    else unlock.push(candidate);
  }
  return { unlock, deferred };
}

// The `<vm>.lock` names in the root's xo-vm-backups, reached as lockMtime's lstat reaches them; none when it is
// missing; undefined when it cannot be listed (each lock is lstat'ed then).
function lockNames(root: string): Set<string> | undefined {
  try {
    const names = new Set<string>();
    for (const name of readdirSync(path.join(root, 'xo-vm-backups'))) if (name.endsWith('.lock')) names.add(name);
    return names;
  } catch (error) {
    return errnoCode(error) === 'ENOENT' ? new Set() : undefined;
  }
}

// The lock folder's mtime (never through a link), or undefined when there is none.
function lockMtime(lock: string): number | undefined {
  try {
    // Most VM folders have no lock: a miss without a thrown ENOENT, which costs more than the lstat.
    const stats = lstatSync(lock, { throwIfNoEntry: false });
    return stats?.isDirectory() === true ? stats.mtimeMs : undefined;
  } catch {
    return undefined;
  }
}
