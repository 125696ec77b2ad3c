import { unlinkSync } from 'node:fs';
import path from 'node:path';
import type { AttributesAdapter } from '../attributes/adapter.js';
import { yieldIfDue } from '../concurrency.js';
import { isInside } from '../paths.js';
import { errnoCode } from '../errors.js';
import type { RemoteContext } from '../context/remote-context.js';
import { isRealFolder } from '../remote/confine.js';
import { remoteHealthProblem } from '../remote/health.js';
import { examine } from '../remote/read.js';
import { blockedPaths, liftableDays, planLift, type LiftCandidate } from './plan.js';

export interface LiftOptions {
  now: number;
  dryRun: boolean;
  // Make the whole remote mutable, windows ignored (decommissioning).
  all: boolean;
  onProgress?: (done: number, total: number) => void;
  // Entries read, checked and unlocked together (default CHUNK); smaller in tests, to see chunks follow each other.
  chunkSize?: number;
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

// Units read, checked and unlocked together: one chattr batch, and a bound on what a pass holds in memory.
const CHUNK = 4096;

// Unlock, then forget: chattr -i first, then XO's caches, then the entries, so a crash in between leaves entries for
// mutable units that the next pass removes. Nothing is unlocked before its window has passed (lift/plan.ts), and
// nothing is forgotten while the root does not look like the protected remote (unmounted, swapped).
// The index is streamed: only the day buckets old enough to hold an expired entry are read, one chunk at a time, so
// a pass costs what it lifts, not what is protected.
export async function liftRemote(
  remote: RemoteContext,
  attributes: AttributesAdapter,
  options: LiftOptions,
): Promise<LiftReport> {
  const report: LiftReport = {
    remote: remote.id,
    dryRun: options.dryRun,
    unlocked: [],
    vanished: [],
    failed: [],
    suspicious: [],
    unreadableEntries: [],
    kept: 0,
    cachesRemoved: [],
  };
  const days = await remote.index.listDays();
  const liftable = liftableDays(days, options.now, remote.durationMs, options.all);
  const liftableSet = new Set(liftable);
  // For every name in a liftable bucket, the newest bucket holding it: the path's newest entry, which governs.
  const namesOf = new Map<string, string[]>();
  const newestDay = new Map<string, string>();
  let total = 0;
  for (const day of liftable) {
    const names = await remote.index.names(day);
    namesOf.set(day, names);
    total += names.length;
    for (const name of names) newestDay.set(name, day);
  }
  // The other buckets are newer: their names are streamed once, never held, and only to find newer entries of what
  // may be lifted; with nothing liftable they are only counted.
  let entries = total;
  for (const day of days) {
    if (liftableSet.has(day)) continue;
    if (newestDay.size === 0) {
      entries += await remote.index.countNames(day);
      continue;
    }
    for await (const batch of remote.index.streamNames(day)) {
      entries += batch.length;
      for (const name of batch) if (newestDay.has(name)) newestDay.set(name, day);
    }
  }
  // Entries whose path a newer bucket names too, carried until that newer entry is lifted, and forgotten with it.
  const carried = new Map<string, { day: string; name: string }[]>();
  const blocked = new Set<string>();
  let healthChecked = false;
  let forgotten = 0;
  let done = 0;
  // The chunk unlocked last, forgotten while the next one is unlocked, or after the last one.
  let lastLifted: ChunkLifted | undefined;
  const forgetLast = async (): Promise<void> => {
    if (lastLifted === undefined) return;
    const names = await forgetChunk(remote, lastLifted, options.dryRun, report);
    lastLifted = undefined;
    forgotten += names.length;
    for (const name of names) carried.delete(name);
  };
  try {
    for (const day of liftable) {
      const names = namesOf.get(day) ?? [];
      namesOf.delete(day);
      const own: string[] = [];
      for (const name of names) {
        if (newestDay.get(name) === day) own.push(name);
        else carried.set(name, [...(carried.get(name) ?? []), { day, name }]);
      }
      done += names.length - own.length;
      const chunkSize = options.chunkSize ?? CHUNK;
      for (let start = 0; start < own.length; start += chunkSize) {
        const chunk = own.slice(start, start + chunkSize);
        const plan = planLift(
          await remote.index.readEntries(day, chunk),
          options.now,
          remote.durationMs,
          options.all,
          blocked,
        );
        report.unreadableEntries.push(...plan.unreadable.map((u) => path.join(remote.index.folder, u.day, u.name)));
        for (const named of blockedPaths(plan.unreadable)) blocked.add(named);
        for (const candidate of plan.unlock) {
          const older = candidate.entries.flatMap((entry) => carried.get(entry.name) ?? []);
          candidate.entries.push(...older);
          // A governing entry written before its lock (pending) has no identity: an older one's is checked instead.
          candidate.identity ??= await newestIdentity(remote, older);
        }
        if (plan.unlock.length > 0 && !healthChecked) {
          // An unmounted remote looks empty: forgetting entries there would leave the real units locked for good.
          const unhealthy = await remoteHealthProblem(remote.root, attributes);
          if (unhealthy !== undefined) {
            report.failed.push({
              path: remote.root,
              message: `nothing lifted: ${unhealthy} (start the daemon once on it to write the file)`,
            });
            return report;
          }
          healthChecked = true;
        }
        lastLifted = await unlockChunk(remote, attributes, plan.unlock, options.dryRun, report, forgetLast);
        done += chunk.length;
        options.onProgress?.(done, total);
      }
    }
    await forgetLast();
    if (!options.dryRun) for (const day of liftable) await remote.index.removeDayIfEmpty(day);
    return report;
  } finally {
    // What the index holds after the pass (or would, with dryRun): one entry per unit and bucket naming it.
    report.kept = entries - forgotten;
  }
}

async function newestIdentity(
  remote: RemoteContext,
  older: readonly { day: string; name: string }[],
): Promise<LiftCandidate['identity']> {
  for (const { day, name } of [...older].sort((a, b) => b.day.localeCompare(a.day))) {
    const [stored] = await remote.index.readEntries(day, [name]);
    if (stored?.entry?.identity !== undefined) return stored.entry.identity;
  }
  return undefined;
}

interface ChunkLifted {
  unlocked: LiftCandidate[];
  gone: LiftCandidate[];
}

// Checks and unlocks one chunk. `meanwhile` (forgetting the chunk before) runs while this chunk's chattr does, so their
// disk waits overlap; chattr is waited for whatever `meanwhile` does, so nothing started here outlives the call.
async function unlockChunk(
  remote: RemoteContext,
  attributes: AttributesAdapter,
  candidates: readonly LiftCandidate[],
  dryRun: boolean,
  report: LiftReport,
  meanwhile: () => Promise<void>,
): Promise<ChunkLifted> {
  const verdicts: Verdict[] = [];
  // Folders of this chunk found real so far: the units of one backup share all but their last folder.
  const real = new Set<string>();
  for (const candidate of candidates) verdicts.push(await checkCandidate(remote, candidate, real));
  const safe: { candidate: LiftCandidate; recursive: boolean }[] = [];
  const gone: LiftCandidate[] = [];
  candidates.forEach((candidate, i) => {
    const verdict = verdicts[i]!;
    if (verdict.kind === 'suspicious') report.suspicious.push({ path: candidate.path, reason: verdict.reason });
    else if (verdict.kind === 'missing') report.failed.push({ path: candidate.path, message: verdict.reason });
    else if (verdict.kind === 'vanished') gone.push(candidate);
    else safe.push({ candidate, recursive: verdict.recursive });
  });
  const unlocked: LiftCandidate[] = [];
  // Forgetting the chunk before failed: this chunk is still reported as unlocked (it is; its entries stay, for the next pass).
  let forgetFailure: PromiseRejectedResult | undefined;
  if (dryRun || safe.length === 0) {
    await meanwhile();
    if (dryRun) unlocked.push(...safe.map(({ candidate }) => candidate));
  } else {
    const [unlocking, other] = await Promise.allSettled([
      attributes.setImmutable(
        safe.map(({ candidate, recursive }) => ({ path: candidate.path, recursive })),
        false,
      ),
      meanwhile(),
    ]);
    if (unlocking.status === 'rejected') throw unlocking.reason;
    const byPath = new Map(unlocking.value.map((o) => [o.path, o]));
    for (const { candidate } of safe) {
      const outcome = byPath.get(candidate.path);
      if (outcome?.status === 'ok') unlocked.push(candidate);
      else if (outcome?.status === 'vanished') gone.push(candidate);
      else
        report.failed.push({
          path: candidate.path,
          message: outcome?.status === 'failed' ? outcome.message : 'no outcome reported',
        });
    }
    if (other.status === 'rejected') forgetFailure = other;
  }
  report.unlocked.push(...unlocked.map(unitOf));
  report.vanished.push(...gone.map(unitOf));
  if (forgetFailure !== undefined) throw forgetFailure.reason;
  return { unlocked, gone };
}

// Forgets what a chunk unlocked (XO's caches, then the entries); returns the names of the entries forgotten (with
// dryRun: that would be).
async function forgetChunk(
  remote: RemoteContext,
  lifted: ChunkLifted,
  dryRun: boolean,
  report: LiftReport,
): Promise<string[]> {
  const entries = [...lifted.unlocked, ...lifted.gone].flatMap((candidate) => candidate.entries);
  if (dryRun) return entries.map((entry) => entry.name);
  report.cachesRemoved.push(...(await removeVmCaches(remote, lifted.unlocked, report.failed)));
  for (const entry of entries) await remote.index.remove(entry.day, entry.name);
  return entries.map((entry) => entry.name);
}

type Verdict =
  | { kind: 'ok'; recursive: boolean }
  | { kind: 'vanished' }
  | { kind: 'missing'; reason: string }
  | { kind: 'suspicious'; reason: string };

// The index is trusted, the remote is not: the path must still be inside the root with no symlink on the way,
// and be the very file that was locked (inode and birth time: the device number can change across reboots).
async function checkCandidate(
  remote: RemoteContext,
  candidate: LiftCandidate,
  knownReal: Set<string>,
): Promise<Verdict> {
  const { path: unit } = candidate;
  if (!path.isAbsolute(unit) || !isInside(unit, remote.root) || path.resolve(unit) === path.resolve(remote.root)) {
    return { kind: 'suspicious', reason: `it is not inside the remote root ${remote.root}` };
  }
  const real = await isRealFolder(remote, path.dirname(unit), knownReal);
  // A locked unit's folder cannot be removed, only renamed: keep the entries until it is back or lifted by hand.
  if (real === undefined)
    return {
      kind: 'missing',
      reason: `its folder ${path.dirname(unit)} is gone (renamed?); entries kept, the next pass tries again`,
    };
  if (!real) return { kind: 'suspicious', reason: 'a folder on its path is a symbolic link' };
  const examined = await examine(unit);
  if (examined === undefined) return { kind: 'vanished' };
  if (examined.type === 'symlink' || examined.type === 'other')
    return {
      kind: 'suspicious',
      reason: `it is now a ${examined.type === 'symlink' ? 'symbolic link' : 'special file'}`,
    };
  const recorded = candidate.identity;
  const reborn =
    recorded?.birthtimeNs !== undefined &&
    recorded.birthtimeNs !== '0' &&
    examined.identity.birthtimeNs !== '0' &&
    recorded.birthtimeNs !== examined.identity.birthtimeNs;
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
async function removeVmCaches(
  remote: RemoteContext,
  unlocked: readonly LiftCandidate[],
  failed: LiftReport['failed'],
): Promise<string[]> {
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
      await yieldIfDue();
      unlinkSync(cache);
      removed.push(cache);
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT')
        failed.push({ path: cache, message: `could not remove XO's metadata cache: ${(error as Error).message}` });
    }
  }
  return removed;
}
