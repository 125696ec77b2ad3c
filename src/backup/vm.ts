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
  type VdiFolder,
  type VmBackup,
  type VmListing,
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
  // What restoring it, or repairing it by hand, needs: `units`, `chain`, and the json of each flat VHD of the chain
  // (backup/flat-jsons.ts).
  needed: UnitRef[];
  // Aliases of it or its chain pointing outside their VDI folder: never followed. Paths relative to the remote's root.
  problems: Problem[];
}

// What the backups of one snapshot share when many are asked (a reconcile): its listings by name, and the older VHDs
// of each folder and date (backup/chain.ts), built once.
export interface UnitsMemo {
  listing: VmListing;
  vdis: ReadonlyMap<string, VdiFolder>;
  older: Map<string, UnitRef[]>;
}

export function unitsMemo(snapshot: VmSnapshot): UnitsMemo {
  return {
    listing: indexListing(snapshot.entries, snapshot.vdis),
    vdis: new Map(snapshot.vdis.map((v) => [v.path, v])),
    older: new Map(),
  };
}

// A backup's own units as named and listed: its json, xva and checksum, disks and aliases, what its json names (looked
// up in the listings only, where XO writes: the json is written by the party we protect against). Aliases unresolved.
export function ownUnitsOf(
  snapshot: VmSnapshot,
  backup: VmBackup,
  listing: VmListing,
): Pick<BackupUnits, 'units' | 'missing' | 'named'> & { aliases: string[] } {
  const { units, aliases } = vmBackupParts(backup, listing);
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

// The one rule for a backup's units (protect's plan, lift, status, verify and stage-restore ask it): its own, what
// each alias points to (aliasUnit: a missing target is claimed, one outside its VDI folder is a problem), and unless
// `chains` is false what each disk is built on (backup/chain.ts; encrypted: by name). One flat VHD file or alias per
// disk: a VHD directory in place is not what XO writes, and has no chain.
export function unitsOf(
  snapshot: VmSnapshot,
  backup: VmBackup,
  options: { chains?: boolean; memo?: UnitsMemo } = {},
): BackupUnits {
  const memo = options.memo ?? unitsMemo(snapshot);
  const { units, aliases, missing, named } = ownUnitsOf(snapshot, backup, memo.listing);
  const own = new Set(units.map((u) => u.path));
  const disks = units.filter((u) => !u.recursive && u.path.startsWith('vdis/') && u.path.endsWith('.vhd'));
  for (const alias of aliases) {
    const unit = directoryOfAlias(snapshot, alias);
    if (unit !== undefined && !own.has(unit.path)) {
      own.add(unit.path);
      units.push(unit);
    }
  }
  if (snapshot.encrypted) return byName(snapshot, backup, { units, missing, named }, disks);
  const chains =
    options.chains === false
      ? []
      : disks.map((disk) => {
          const slash = disk.path.lastIndexOf('/');
          return chainOf(snapshot, memo.vdis.get(disk.path.slice(0, slash)) as VdiFolder, disk.path.slice(slash + 1), {
            older: memo.older,
            listing: memo.listing,
          });
        });
  // Each unit once, and each folder's older VHDs once, however many disks fell back on them (an attacker's folder can
  // hold 20,000 files, a json name 4096 disks).
  const chain = new Map<string, UnitRef>();
  const olderAdded = new Set<readonly UnitRef[]>();
  const add = (found: readonly UnitRef[]): void => {
    for (const unit of found) if (!own.has(unit.path) && !chain.has(unit.path)) chain.set(unit.path, unit);
  };
  for (const found of chains) {
    add(found.units);
    if (found.older !== undefined && !olderAdded.has(found.older)) {
      olderAdded.add(found.older);
      add(found.older);
    }
  }
  const problems: Problem[] = [];
  for (const alias of [...aliases, ...[...chain.keys()].filter(isAliasName)]) {
    const target = snapshot.aliases.get(alias);
    if (target !== undefined && 'outside' in target)
      problems.push({
        path: `${snapshot.folder}/${alias}`,
        reason: `the alias points outside its VDI folder (${target.outside})`,
      });
  }
  const found = { units, missing, named, disks: chains, chain: [...chain.values()], problems };
  // The chain is apart from the units; a flat chain's jsons (top-level names) can only meet the backup's own json.
  const jsons = jsonsOfFlatChain(found.chain, memo.listing).filter((json) => !own.has(json.path));
  return { ...found, chainKnown: chains.every((c) => !c.unknown), needed: [...units, ...found.chain, ...jsons] };
}

// The VHD directory an alias brings: where it points (aliasUnit); on an encrypted remote, where aliases are
// ciphertext, the one of its name in data/ (remote/by-name.ts).
export function directoryOfAlias(snapshot: VmSnapshot, alias: string): UnitRef | undefined {
  if (!snapshot.encrypted) return aliasUnit(snapshot, alias);
  const name = `${path.posix.basename(alias, '.alias.vhd')}.vhd`;
  const directory = snapshot.data.get(path.posix.dirname(alias))?.find((d) => d.name === name);
  return directory === undefined ? undefined : { path: directory.path, recursive: true };
}

// Encrypted: a backup's chain is every alias and finished VHD directory of its VDI folders up to its datetime
// (remote/by-name.ts).
function byName(
  snapshot: VmSnapshot,
  backup: VmBackup,
  found: Pick<BackupUnits, 'units' | 'missing' | 'named'>,
  disks: readonly UnitRef[],
): BackupUnits {
  const own = new Set(found.units.map((u) => u.path));
  const chain = snapshot.vdis
    .flatMap((vdi) => chainClaimsByName(vdi, snapshot.data.get(vdi.path) ?? [], [backup]).map((claim) => claim.unit))
    .filter((unit) => !own.has(unit.path));
  return {
    ...found,
    disks: disks.map((disk) => ({ disk: disk.path, units: [], unknown: true })),
    chain,
    chainKnown: disks.length === 0,
    needed: [...found.units, ...chain],
    problems: [],
  };
}

// What restoring the backup, or repairing it by hand, needs (hold start, lift/vm.ts).
export function neededBy(snapshot: VmSnapshot, backup: VmBackup): UnitRef[] {
  return unitsOf(snapshot, backup).needed;
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
