import { parseBackupDatetime } from '../remote/datetime.js';
import type { UnitRef, VdiFolder, VmListing } from '../remote/model.js';
import type { VmSnapshot } from './snapshot.js';

// Pure: what a backup's disk is built on, from the parent links a snapshot read (backup/snapshot.ts).

// A chain longer than this is not one XO keeps (its retention merges older backups into the base).
const MAX_CHAIN = 1_000;

export interface DiskChain {
  // Relative to the VM folder.
  disk: string;
  // Every VHD (and the directory of each alias) its parent links lead to.
  units: UnitRef[];
  // Some link could not be read (damaged header, parent missing, encrypted): every older VHD of its folder.
  older?: UnitRef[];
  unknown: boolean;
  // The parent a header names that is not in the folder (deleted, or never written).
  missing?: string;
}

// XO points aliases at VHD directories only (vhd-lib VhdAbstract.createAlias): the place an alias points to is claimed
// as one, whatever is there (the flag helper refuses a file on its descriptor; a missing one is a missing unit, claimed
// so that a target moved aside for a moment is locked when back). Undefined when the alias points outside its VDI
// folder (a problem, never followed: backup/vm.ts) or could not be read.
export function aliasUnit(snapshot: VmSnapshot, alias: string): UnitRef | undefined {
  const target = snapshot.aliases.get(alias);
  return target === undefined || !('path' in target) ? undefined : { path: target.path, recursive: true };
}

export interface ChainOptions {
  // Older VHDs by folder and date, shared by the disks of a snapshot that fall back on them (the same array: an
  // attacker's folder can hold 20,000 files, a json name 4096 disks).
  older: Map<string, UnitRef[]>;
  // The snapshot's listings by name (remote/model.ts indexListing), built once for all disks.
  listing: VmListing;
}

// vhd-lib writes a delta's parent as the name of a sibling ("<dt>.alias.vhd" or "<dt>.vhd"); where a link cannot be
// read, the safe side: every older VHD of the folder.
export function chainOf(snapshot: VmSnapshot, vdi: VdiFolder, disk: string, options: ChainOptions): DiskChain {
  const names = options.listing.vdis.get(vdi.path) ?? new Map(vdi.entries.map((e) => [e.name, e]));
  const units: UnitRef[] = [];
  const seen = new Set([disk]);
  const fallback = (missing?: string): DiskChain => ({
    disk: `${vdi.path}/${disk}`,
    units,
    older: olderVhds(snapshot, vdi, parseBackupDatetime(disk) ?? Infinity, options.older),
    unknown: true,
    ...(missing === undefined ? {} : { missing }),
  });
  let current = disk;
  for (let depth = 0; depth < MAX_CHAIN; depth++) {
    const link = snapshot.links.get(`${vdi.path}/${current}`) ?? { kind: 'unknown' };
    if (link.kind === 'base') return { disk: `${vdi.path}/${disk}`, units, unknown: false };
    const parent = link.kind === 'delta' ? siblingName(link.parent) : undefined;
    if (parent === undefined || seen.has(parent) || names.get(parent)?.isFile !== true)
      return fallback(parent !== undefined && !seen.has(parent) ? `${vdi.path}/${parent}` : undefined);
    seen.add(parent);
    units.push({ path: `${vdi.path}/${parent}`, recursive: false });
    const target = parent.endsWith('.alias.vhd') ? aliasUnit(snapshot, `${vdi.path}/${parent}`) : undefined;
    if (target !== undefined) units.push(target);
    current = parent;
  }
  return fallback();
}

// A parent named as XO names it: a plain VHD or alias name beside the child, never a path or a dot name.
function siblingName(name: string): string | undefined {
  const base = name.startsWith('./') ? name.slice(2) : name;
  return base.includes('/') || base.startsWith('.') || !base.endsWith('.vhd') ? undefined : base;
}

// Every VHD (file, or alias and its directory) of the folder not newer than `limit` (the disk itself included).
function olderVhds(snapshot: VmSnapshot, vdi: VdiFolder, limit: number, cache: Map<string, UnitRef[]>): UnitRef[] {
  const key = `${vdi.path}\0${limit}`;
  const known = cache.get(key);
  if (known !== undefined) return known;
  const units: UnitRef[] = [];
  cache.set(key, units);
  for (const entry of vdi.entries) {
    if (!entry.isFile || !entry.name.endsWith('.vhd') || entry.name.startsWith('.')) continue;
    if ((parseBackupDatetime(entry.name) ?? -Infinity) > limit) continue;
    units.push({ path: `${vdi.path}/${entry.name}`, recursive: false });
    const target = entry.name.endsWith('.alias.vhd') ? aliasUnit(snapshot, `${vdi.path}/${entry.name}`) : undefined;
    if (target !== undefined) units.push(target);
  }
  return units;
}
