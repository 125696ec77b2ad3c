import path from 'node:path';
import { unlessLinked, type HeldRemote } from '../remote/held.js';
import { chainCostOf, type ChainCost } from './chain-cost.js';
import type { ReadImmutable, SurveyedRemote, SurveyedVm } from './restore-survey.js';

// What the leftovers a survey found (status/chain-cost.ts) hold: each unit's immutable flag, then the bytes of the
// locked ones (one lstat per file of a VHD directory: only leftovers are walked, never the whole remote).
export async function surveyChainCost(
  held: HeldRemote,
  remote: SurveyedRemote,
  vms: readonly SurveyedVm[],
  readImmutable: ReadImmutable,
): Promise<ChainCost> {
  const keyOf = (vm: string, unit: string): string => path.join(held.root, 'xo-vm-backups', vm, unit);
  const units = vms.flatMap((vm) => vm.leftovers.flatMap((l) => l.units.map((u) => keyOf(vm.vm, u))));
  const flags = units.length === 0 ? new Map<string, boolean | undefined>() : await readImmutable(units);
  const locked = new Map<string, boolean>();
  const bytes = new Map<string, number>();
  for (const unit of units) {
    if (flags.get(unit) !== true) continue;
    locked.set(unit, true);
    bytes.set(unit, unlessLinked(() => treeBytes(held, path.relative(held.root, unit))) ?? 0);
  }
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
