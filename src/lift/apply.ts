import { unlink } from 'node:fs/promises';
import path from 'node:path';
import type { AttributesAdapter } from '../attributes/adapter.js';
import { isInside } from '../config/validate.js';
import { errnoCode } from '../errors.js';
import type { StoredEntry } from '../index/store.js';
import type { RemoteContext } from '../remote/context.js';
import { isRealFolder } from '../remote/confine.js';
import { remoteHealthProblem } from '../remote/health.js';
import { examine } from '../remote/read.js';
import { planLift, type LiftCandidate } from './plan.js';

export interface LiftOptions {
  now: number;
  dryRun: boolean;
  // Make the whole remote mutable, windows ignored (decommissioning).
  all: boolean;
  onProgress?: (done: number, total: number) => void;
}

export interface LiftedUnit {
  path: string;
  day: string;
  kind: LiftCandidate['kind'];
}

export interface LiftReport {
  remote: string;
  dryRun: boolean;
  // Unlocked (or, with dryRun, would be); their entries are forgotten.
  unlocked: LiftedUnit[];
  // Gone from the remote already: only their entries are forgotten.
  vanished: LiftedUnit[];
  failed: { path: string; message: string }[];
  // Never acted on: outside the root, through a symlink, or not the unit that was locked.
  suspicious: { path: string; reason: string }[];
  unreadableEntries: string[];
  kept: number;
  cachesRemoved: string[];
}

const BATCH = 4096;

// Unlock, then forget: chattr -i first, then XO's caches, then the entries, so a crash in between leaves entries for
// mutable units that the next pass removes. Nothing is unlocked before its window has passed (lift/plan.ts), and
// nothing is forgotten while the root does not look like the protected remote (unmounted, swapped).
export async function liftRemote(remote: RemoteContext, attributes: AttributesAdapter, options: LiftOptions): Promise<LiftReport> {
  const stored: StoredEntry[] = [];
  for (const day of await remote.index.listDays()) stored.push(...(await remote.index.readDay(day)));
  const plan = planLift(stored, options.now, remote.durationMs, options.all);
  const report: LiftReport = {
    remote: remote.id,
    dryRun: options.dryRun,
    unlocked: [],
    vanished: [],
    failed: [],
    suspicious: [],
    unreadableEntries: plan.unreadable.map((u) => path.join(remote.index.folder, u.day, u.name)),
    kept: plan.kept,
    cachesRemoved: [],
  };
  if (plan.unlock.length === 0) return report;
  // An unmounted remote looks empty: forgetting entries there would leave the real units locked for good.
  const unhealthy = await remoteHealthProblem(remote.root, attributes);
  if (unhealthy !== undefined) {
    report.failed.push({ path: remote.root, message: `nothing lifted: ${unhealthy} (start the daemon once on it to write the file)` });
    return report;
  }
  const total = plan.unlock.length;
  let done = 0;
  for (let start = 0; start < total; start += BATCH) {
    const batch = plan.unlock.slice(start, start + BATCH);
    const safe: { candidate: LiftCandidate; recursive: boolean }[] = [];
    const gone: LiftCandidate[] = [];
    for (const candidate of batch) {
      const verdict = await checkCandidate(remote, candidate);
      if (verdict.kind === 'suspicious') report.suspicious.push({ path: candidate.path, reason: verdict.reason });
      else if (verdict.kind === 'missing') report.failed.push({ path: candidate.path, message: verdict.reason });
      else if (verdict.kind === 'vanished') gone.push(candidate);
      else safe.push({ candidate, recursive: verdict.recursive });
    }
    const unlocked: LiftCandidate[] = [];
    if (options.dryRun) {
      unlocked.push(...safe.map(({ candidate }) => candidate));
    } else {
      const outcomes = await attributes.setImmutable(safe.map(({ candidate, recursive }) => ({ path: candidate.path, recursive })), false);
      const byPath = new Map(outcomes.map((o) => [o.path, o]));
      for (const { candidate } of safe) {
        const outcome = byPath.get(candidate.path);
        if (outcome?.status === 'ok') unlocked.push(candidate);
        else if (outcome?.status === 'vanished') gone.push(candidate);
        else report.failed.push({ path: candidate.path, message: outcome?.status === 'failed' ? outcome.message : 'no outcome reported' });
      }
      report.cachesRemoved.push(...(await removeVmCaches(remote, unlocked, report.failed)));
      for (const candidate of [...unlocked, ...gone]) for (const entry of candidate.entries) await remote.index.remove(entry.day, entry.name);
    }
    report.unlocked.push(...unlocked.map(unitOf));
    report.vanished.push(...gone.map(unitOf));
    done += batch.length;
    options.onProgress?.(done, total);
  }
  if (!options.dryRun) {
    for (const day of new Set(plan.unlock.flatMap((c) => c.entries.map((e) => e.day)))) await remote.index.removeDayIfEmpty(day);
  }
  return report;
}

type Verdict = { kind: 'ok'; recursive: boolean } | { kind: 'vanished' } | { kind: 'missing'; reason: string } | { kind: 'suspicious'; reason: string };

// The index is trusted, the remote is not: the path must still be inside the root with no symlink on the way,
// and be the very file that was locked (inode and birth time: the device number can change across reboots).
async function checkCandidate(remote: RemoteContext, candidate: LiftCandidate): Promise<Verdict> {
  const { path: unit } = candidate;
  if (!path.isAbsolute(unit) || !isInside(unit, remote.root) || path.resolve(unit) === path.resolve(remote.root)) {
    return { kind: 'suspicious', reason: `it is not inside the remote root ${remote.root}` };
  }
  const real = await isRealFolder(remote, path.dirname(unit));
  // A locked unit's folder cannot be removed, only renamed: keep the entries until it is back or lifted by hand.
  if (real === undefined) return { kind: 'missing', reason: `its folder ${path.dirname(unit)} is gone (renamed?); entries kept, the next pass tries again` };
  if (!real) return { kind: 'suspicious', reason: 'a folder on its path is a symbolic link' };
  const examined = await examine(unit);
  if (examined === undefined) return { kind: 'vanished' };
  if (examined.type === 'symlink' || examined.type === 'other') return { kind: 'suspicious', reason: `it is now a ${examined.type === 'symlink' ? 'symbolic link' : 'special file'}` };
  const recorded = candidate.identity;
  const reborn = recorded?.birthtimeNs !== undefined && recorded.birthtimeNs !== '0' && examined.identity.birthtimeNs !== '0' && recorded.birthtimeNs !== examined.identity.birthtimeNs;
  if (recorded !== undefined && (recorded.ino !== examined.identity.ino || reborn)) {
    return {
      kind: 'suspicious',
      reason: `it is not the file that was locked (inode/birth ${examined.identity.ino}/${examined.identity.birthtimeNs ?? '?'}, recorded ${recorded.ino}/${recorded.birthtimeNs ?? '?'}); check it, then unlock it by hand (chattr -i) or with lift --all`,
    };
  }
  return { kind: 'ok', recursive: candidate.recursive || examined.type === 'directory' };
}

function unitOf(candidate: LiftCandidate): LiftedUnit {
  return { path: candidate.path, day: candidate.day, kind: candidate.kind };
}

// XO caches a VM folder's metadata in cache.json.gz; after a lift it must re-read it, so the cache goes.
async function removeVmCaches(remote: RemoteContext, unlocked: readonly LiftCandidate[], failed: LiftReport['failed']): Promise<string[]> {
  const folders = new Set<string>();
  for (const unit of unlocked) {
    if (unit.kind !== 'vm') continue;
    const [tree, vm] = path.relative(remote.root, unit.path).split(path.sep);
    if (tree === 'xo-vm-backups' && vm !== undefined) folders.add(path.join(remote.root, tree, vm));
  }
  const removed: string[] = [];
  for (const folder of folders) {
    const cache = path.join(folder, 'cache.json.gz');
    try {
      await unlink(cache);
      removed.push(cache);
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') failed.push({ path: cache, message: `could not remove XO's metadata cache: ${(error as Error).message}` });
    }
  }
  return removed;
}
