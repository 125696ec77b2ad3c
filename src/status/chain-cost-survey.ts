import path from 'node:path';
import type { AttributesAdapter } from '../attributes/adapter.js';
import type { RemoteConfig } from '../config/schema.js';
import type { StoredEntry } from '../index/store.js';
import { windowMsOf } from '../remote/model.js';
import { readingOf } from '../remote/encryption.js';
import { unlessLinked, withHeldRemote, type HeldRemote } from '../remote/held.js';
import { resolveRemoteRoot } from '../remote/root.js';
import { chainCostOf, type ChainCost, type VmChainCost } from './chain-cost.js';
import { surveyRemote, type ReadImmutable, type SurveyedRemote, type SurveyedVm } from './restore-survey.js';

// A configured remote read now, not from the daemon's last look (status, check): its VMs surveyed against `stored`,
// and what it holds beyond XO's retention. `shapeOnly`: the VMs' flags are not read (check needs only the shape of
// their backups; the leftovers' flags are read all the same).
export async function surveyRemoteNow(
  remote: RemoteConfig,
  options: { protectChains: boolean; stored: readonly StoredEntry[]; attributes: AttributesAdapter; now: number },
  shapeOnly = false,
): Promise<{ vms: SurveyedVm[]; chainCost: ChainCost }> {
  const root = { root: remote.root, realRoot: await resolveRemoteRoot(remote) };
  const within = { ...root, ...(await readingOf(remote, root)) };
  const surveyed = {
    encrypted: within.encrypted,
    windowMs: windowMsOf(remote.immutabilityDurationMs),
    protectChains: remote.protectChains ?? options.protectChains,
  };
  const readImmutable: ReadImmutable = (paths) => options.attributes.isImmutable(within, paths);
  const noFlags: ReadImmutable = () => Promise.resolve(new Map<string, boolean | undefined>());
  return withHeldRemote(within, async (held) => {
    const vms = await surveyRemote(held, surveyed, options.stored, shapeOnly ? noFlags : readImmutable, options.now);
    return { vms, chainCost: await surveyChainCost(held, surveyed, vms, readImmutable) };
  });
}

// Bytes of locked units by path, with the ctime they were measured at: a locked unit cannot change, and unlocking or
// locking it again moves its ctime, so an unchanged ctime means unchanged bytes.
export type SizeCache = Map<string, { ctimeMs: number; bytes: number }>;

// What the leftovers a survey found (status/chain-cost.ts) hold: each unit's immutable flag, then the bytes of the
// locked ones (one lstat per file of a VHD directory: only leftovers are walked, never the whole remote; the daemon,
// which counts every rescanEvery, passes a cache so each is walked once).
export async function surveyChainCost(
  held: HeldRemote,
  remote: SurveyedRemote,
  vms: readonly VmChainCost[],
  readImmutable: ReadImmutable,
  cache: SizeCache = new Map(),
): Promise<ChainCost> {
  const keyOf = (vm: string, unit: string): string => path.join(held.root, 'xo-vm-backups', vm, unit);
  const units = vms.flatMap((vm) => vm.leftovers.flatMap((l) => l.units.map((u) => keyOf(vm.vm, u))));
  const flags = units.length === 0 ? new Map<string, boolean | undefined>() : await readImmutable(units);
  const locked = new Map<string, boolean>();
  const bytes = new Map<string, number>();
  const measured: SizeCache = new Map();
  for (const unit of units) {
    if (flags.get(unit) !== true) continue;
    locked.set(unit, true);
    const relative = path.relative(held.root, unit);
    const ctimeMs = unlessLinked(() => held.lstat(relative))?.ctimeMs;
    if (ctimeMs === undefined) continue;
    const known = cache.get(unit);
    const size = known?.ctimeMs === ctimeMs ? known.bytes : (unlessLinked(() => treeBytes(held, relative)) ?? 0);
    measured.set(unit, { ctimeMs, bytes: size });
    bytes.set(unit, size);
  }
  // Only what is still there and locked is kept.
  cache.clear();
  for (const [unit, size] of measured) cache.set(unit, size);
  return chainCostOf(vms, remote.encrypted && remote.protectChains !== false, locked, bytes, keyOf);
}

// The sizes of a file, or of every file below a folder (links not followed).
function treeBytes(held: HeldRemote, relative: string): number {
  const stats = held.lstat(relative);
  if (stats === undefined || stats.isSymbolicLink()) return 0;
  if (!stats.isDirectory()) return stats.size;
  let total = 0;
  for (const entry of held.list(relative)) if (!entry.isSymlink) total += treeBytes(held, `${relative}/${entry.name}`);
  return total;
}
