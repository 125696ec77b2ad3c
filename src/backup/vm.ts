import path from 'node:path';
import { judgeCompletion, type Completion } from './completion.js';
import { chainClaimsByName } from '../remote/by-name.js';
import {
  findVmBackups,
  indexListing,
  isAliasName,
  lookupListed,
  readReferences,
  vmBackupParts,
  type UnitRef,
  type VmBackup,
} from '../remote/model.js';
import { aliasUnit, chainOf, type DiskChain } from './chain.js';
import { jsonsOfFlatChain } from './flat-jsons.js';
import type { Problem, VmSnapshot } from './snapshot.js';

// Pure: what the backups of one VM folder are and what each needs, asked of one snapshot (backup/snapshot.ts).
// status, verify, stage-restore, protect and lift ask here (docs/architecture.md).

export function backupsOf(snapshot: VmSnapshot): VmBackup[] {
  return findVmBackups(snapshot.entries.filter((e) => e.isFile).map((e) => e.name)).filter((b) =>
    snapshot.jsons.has(b.metadata),
  );
}

// XO writes a backup's json last (backup/completion.ts): complete once it parses, or once settled.
export function completionOf(snapshot: VmSnapshot, backup: VmBackup, now: number, settleMs: number): Completion {
  const json = snapshot.jsons.get(backup.metadata);
  if (json === undefined) return { complete: false };
  return judgeCompletion(json.parsed ?? json.content, json.size, json.mtimeMs, now, settleMs);
}

// A json XO can list as a restore point: readable, or on an encrypted remote (ciphertext) any.
export function isRestorePoint(snapshot: VmSnapshot, backup: VmBackup): boolean {
  return snapshot.encrypted || snapshot.jsons.get(backup.metadata)?.parsed !== undefined;
}

export interface BackupUnits {
  // Its json, xva and checksum, its disks and aliases, what each alias points to, what its json names.
  units: UnitRef[];
  // Named by its json, but not where XO writes it (or gone): XO cannot restore the backup.
  missing: string[];
  // How many paths its json names (only MAX_REFERENCES_PER_JSON are looked at: more is not a json XO wrote).
  named: number;
  // Per disk: what it is built on.
  disks: DiskChain[];
  // Every unit the disks are built on that is not one of `units` (on encrypted remotes: by name, remote/by-name.ts).
  chain: UnitRef[];
  chainKnown: boolean;
  // Aliases pointing outside their VDI folder: never followed. Paths relative to the remote's root.
  problems: Problem[];
}

// A backup's own units as named and listed: its json, xva and checksum, disks and aliases, what its json names (looked
// up in the listings only, where XO writes: the json is written by the party we protect against). Aliases unresolved.
export function ownUnitsOf(
  snapshot: VmSnapshot,
  backup: VmBackup,
): Pick<BackupUnits, 'units' | 'missing' | 'named'> & { aliases: string[] } {
  const listing = indexListing(snapshot.entries, snapshot.vdis);
  const { units, aliases } = vmBackupParts(backup, snapshot.entries, snapshot.vdis, listing);
  const missing: string[] = [];
  const own = new Set(units.map((u) => u.path));
  const { references, named } = readReferences(snapshot.jsons.get(backup.metadata)?.parsed);
  for (const reference of references) {
    const listed = lookupListed(reference, listing);
    if (listed === undefined) missing.push(reference);
    else if (!own.has(reference)) {
      own.add(reference);
      units.push({ path: reference, recursive: listed.isDirectory });
      if (isAliasName(reference) && listed.isFile) aliases.push(reference);
    }
  }
  return { units, aliases, missing, named };
}

export function unitsOf(snapshot: VmSnapshot, backup: VmBackup): BackupUnits {
  const { units, aliases, missing, named } = ownUnitsOf(snapshot, backup);
  const problems: Problem[] = [];
  const own = new Set(units.map((u) => u.path));
  const add = (unit: UnitRef): void => {
    if (own.has(unit.path)) return;
    own.add(unit.path);
    units.push(unit);
  };
  const disks = units.filter((u) => u.path.startsWith('vdis/') && u.path.endsWith('.vhd')).map((u) => u.path);
  if (snapshot.encrypted) return byName(snapshot, backup, { units, missing, named, problems }, aliases, disks);
  for (const alias of aliases) {
    const unit = aliasUnit(snapshot, alias);
    if (unit !== undefined) add(unit);
  }
  const chains = disks.map((disk): DiskChain => {
    const vdi = snapshot.vdis.find((v) => v.path === path.posix.dirname(disk));
    return vdi === undefined ? { disk, units: [], unknown: true } : chainOf(snapshot, vdi, path.posix.basename(disk));
  });
  const chain = new Map<string, UnitRef>();
  for (const found of chains)
    for (const unit of [...found.units, ...(found.older ?? [])]) if (!own.has(unit.path)) chain.set(unit.path, unit);
  // Its own aliases and those of its chain: one pointing out of its folder is a problem, never followed.
  for (const alias of new Set([...aliases, ...chain.keys()])) {
    const target = snapshot.aliases.get(alias);
    if (target !== undefined && 'outside' in target)
      problems.push({
        path: `${snapshot.folder}/${alias}`,
        reason: `the alias points outside its VDI folder (${target.outside})`,
      });
  }
  return {
    units,
    missing,
    named,
    disks: chains,
    chain: [...chain.values()],
    chainKnown: chains.every((c) => !c.unknown),
    problems,
  };
}

// Encrypted: aliases and headers are ciphertext. A backup's own VHD directory is found by its name, and its chain is
// every alias and finished VHD directory of its VDI folders up to its datetime (remote/by-name.ts).
function byName(
  snapshot: VmSnapshot,
  backup: VmBackup,
  found: Pick<BackupUnits, 'units' | 'missing' | 'named' | 'problems'>,
  aliases: readonly string[],
  disks: readonly string[],
): BackupUnits {
  const own = new Set(found.units.map((u) => u.path));
  for (const alias of aliases) {
    const vdi = path.posix.dirname(alias);
    const name = `${path.posix.basename(alias, '.alias.vhd')}.vhd`;
    const directory = snapshot.data.get(vdi)?.find((d) => d.name === name);
    if (directory !== undefined && !own.has(directory.path)) {
      own.add(directory.path);
      found.units.push({ path: directory.path, recursive: true });
    }
  }
  const chain = snapshot.vdis
    .flatMap((vdi) => chainClaimsByName(vdi, snapshot.data.get(vdi.path) ?? [], [backup]).map((claim) => claim.unit))
    .filter((unit) => !own.has(unit.path));
  return {
    ...found,
    disks: disks.map((disk) => ({ disk, units: [], unknown: true })),
    chain,
    chainKnown: disks.length === 0,
  };
}

// What restoring the backup, or repairing it by hand, needs (lift --vm --backup): its own units, every VHD its disks
// are built on, and the json of each flat VHD of that chain (backup/flat-jsons.ts).
export function neededBy(
  snapshot: VmSnapshot,
  backup: VmBackup,
  units: BackupUnits = unitsOf(snapshot, backup),
): UnitRef[] {
  const flat = snapshot.encrypted ? [] : jsonsOfFlatChain(units.chain, indexListing(snapshot.entries, snapshot.vdis));
  return [...units.units, ...units.chain, ...flat];
}

// One backup as a restore point (status/restore-points.ts judges it): what is missing counts as a missing unit. On an
// encrypted remote the chain by name is a guess, so it is not judged: the point says its chain is not known.
export function restorePointOf(
  snapshot: VmSnapshot,
  backup: VmBackup,
  units: BackupUnits = unitsOf(snapshot, backup),
): { backup: string; instant: number; own: string[]; chain: string[]; chainKnown: boolean } {
  const own = [...units.units.map((u) => u.path), ...units.missing];
  const chain = snapshot.encrypted
    ? []
    : [...units.chain.map((u) => u.path), ...units.disks.flatMap((d) => (d.missing === undefined ? [] : [d.missing]))];
  return {
    backup: backup.metadata,
    instant: backup.instant,
    own: [...new Set(own)],
    chain: [...new Set(chain)].filter((p) => !own.includes(p)),
    chainKnown: units.chainKnown,
  };
}

// What XO writes inside a directory unit: a VHD directory (vhd-lib) holds these files and blocks/<n>/<m>; a config or
// pool metadata date folder holds files only.
export const VHD_DIRECTORY_FILES = ['header', 'footer', 'bat', 'chunk-filters.json'] as const;
export const VHD_DIRECTORY_BLOCKS = 'blocks';

export type UnitLayout = 'file' | 'vhd-directory' | 'date-folder';

export function layoutOf(unit: UnitRef): UnitLayout {
  if (!unit.recursive) return 'file';
  return unit.path.endsWith('.vhd') ? 'vhd-directory' : 'date-folder';
}
