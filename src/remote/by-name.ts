import { parseBackupDatetime } from './datetime.js';
import type { Claim, ListedEntry, VdiFolder } from './model.js';

// What a VHD directory holds once XO has finished writing it (vhd-lib writes blocks first, these last).
export const VHD_DIRECTORY_FINAL_FILES = ['header', 'footer', 'bat'] as const;

export interface DataDirectory {
  // Relative to the VM folder: "vdis/<job>/<vdi>/data/<name>.vhd".
  path: string;
  name: string;
  // Holds header, footer and bat: XO has finished writing it.
  finished: boolean;
  // Its immutable flag, read only where it decides (looksOrphaned); undefined when not read.
  locked?: boolean;
}

// On an encrypted remote aliases and jsons are ciphertext, so which backup a VHD directory belongs to is read from
// names alone: data/<dt>.vhd is backup <dt>'s when <dt>.alias.vhd sits beside data/; any other finished directory (a
// merged base keeps an older name, a legacy one a uuid) belongs to the newest backup of that VDI folder at or after its
// datetime, unless it is an orphan (looksOrphaned).
// `backups`: the complete backups in their window; a backup is in a VDI folder when its alias is.
export function dataDirectoryClaims<B extends { datetime: string; instant: number }>(
  vdi: VdiFolder,
  data: readonly DataDirectory[],
  backups: readonly B[],
): Claim<B>[] {
  const aliases = new Set(vdi.entries.filter((e) => e.isFile && e.name.endsWith('.alias.vhd')).map((e) => e.name));
  const inFolder = backups.filter((b) => aliases.has(`${b.datetime}.alias.vhd`));
  const suspects = new Set(looksOrphaned(vdi, data));
  // XO's merge deletes the child's directory and points the child's alias at the merged base, which keeps its older
  // name: an alias with no directory of its own name is the one pointing at such a base.
  const directories = new Set(data.map((d) => d.name));
  const mergedInto = [...aliases]
    .map((a) => a.slice(0, -'.alias.vhd'.length))
    .filter((datetime) => !directories.has(`${datetime}.vhd`))
    .sort();
  const claims: Claim<B>[] = [];
  for (const directory of data) {
    const datetime = directory.name.slice(0, -'.vhd'.length);
    const owner = aliases.has(`${datetime}.alias.vhd`)
      ? inFolder.find((b) => b.datetime === datetime)
      : isClaimable(directory, suspects)
        ? mergedBaseOwner(inFolder, mergedInto, data, parseBackupDatetime(directory.name))
        : undefined;
    if (owner !== undefined) claims.push({ unit: { path: directory.path, recursive: true }, backup: owner });
  }
  return claims;
}

// A directory with no alias of its own name is the base of a merged chain, an orphan, or one XO is still writing.
// XO's merge removes the merge target's own directory, then writes the target's alias again pointing at the base,
// which keeps its older name (backup-archive MergeRemoteDisk, RemoteVhdDisk.rename): a base always has an alias at or
// after its datetime with no directory of its own name. Without one, the directory is an orphan XO's cleanVm deletes
// (#cleanOrphanDataFiles) or one XO is finishing (validator, then alias): these are the directories returned.
export function looksOrphaned(vdi: VdiFolder, data: readonly DataDirectory[]): DataDirectory[] {
  const own = new Set(aliasNames(vdi).map((name) => name.slice(0, -'.alias.vhd'.length)));
  const names = new Set(data.map((d) => d.name));
  const dangling = [...own].filter((name) => !names.has(`${name}.vhd`)).map((name) => parseBackupDatetime(name));
  return data.filter((directory) => {
    if (!directory.finished || own.has(directory.name.slice(0, -'.vhd'.length))) return false;
    const instant = parseBackupDatetime(directory.name);
    return !dangling.some((alias) => alias === undefined || instant === undefined || alias >= instant);
  });
}

// A directory that looks orphaned stays claimed while its flag is on, or not read: a directory planted later under a
// dangling alias's name must not release a base already locked (when in doubt, protect).
function isClaimable(directory: DataDirectory, suspects: ReadonlySet<DataDirectory>): boolean {
  return directory.finished && (!suspects.has(directory) || directory.locked !== false);
}

function aliasNames(vdi: VdiFolder): string[] {
  return vdi.entries
    .filter((e) => e.isFile && e.name.endsWith('.alias.vhd') && !e.name.startsWith('.'))
    .map((e) => e.name);
}

// A merged base is the data of the aliases without a directory between it and the next directory: XO merges a child
// into its parent, so such an alias points at the nearest directory before it. The base keeps the newest of those
// backups' windows, and is freed with them. Aliases of no backup in its window are ignored, and the newest one wins: an
// alias or backup planted in between can only lengthen the base's window, never free it early. With none (a legacy
// name, or a base not yet known), the safe side: the newest backup of the folder at or after it.
function mergedBaseOwner<B extends { datetime: string; instant: number }>(
  inFolder: readonly B[],
  mergedInto: readonly string[],
  data: readonly DataDirectory[],
  instant: number | undefined,
): B | undefined {
  if (instant === undefined) return newestAtOrAfter(inFolder, instant);
  const next = Math.min(
    ...data.map((d) => parseBackupDatetime(d.name) ?? Infinity).filter((other) => other > instant),
    Infinity,
  );
  const pointing = mergedInto.filter((dt) => {
    const at = parseBackupDatetime(dt);
    return at !== undefined && at >= instant && at < next;
  });
  if (pointing.length === 0) return newestAtOrAfter(inFolder, instant);
  return inFolder.filter((b) => pointing.includes(b.datetime)).sort((a, b) => b.instant - a.instant)[0];
}

export function isFinishedVhdDirectory(listing: readonly ListedEntry[]): boolean {
  return VHD_DIRECTORY_FINAL_FILES.every((name) => listing.some((e) => e.isFile && e.name === name));
}

// With chains protected, by names alone (an encrypted VHD's parent cannot be read): every alias and finished directory
// of a VDI folder but an orphan (looksOrphaned) belongs to the newest complete backup of the folder at or after its
// datetime, so a delta's whole chain stays locked as long as it does. The safe side: a base XO could free may stay
// locked longer.
export function chainClaimsByName<B extends { datetime: string; instant: number }>(
  vdi: VdiFolder,
  data: readonly DataDirectory[],
  backups: readonly B[],
): Claim<B>[] {
  const aliases = aliasNames(vdi);
  const inFolder = backups.filter((b) => aliases.includes(`${b.datetime}.alias.vhd`));
  const suspects = new Set(looksOrphaned(vdi, data));
  const claims: Claim<B>[] = [];
  const claim = (unitPath: string, name: string, recursive: boolean): void => {
    const owner = newestAtOrAfter(inFolder, parseBackupDatetime(name));
    if (owner !== undefined) claims.push({ unit: { path: unitPath, recursive }, backup: owner });
  };
  for (const alias of aliases) claim(`${vdi.path}/${alias}`, alias, false);
  for (const directory of data) if (isClaimable(directory, suspects)) claim(directory.path, directory.name, true);
  return claims;
}

// The VHD directories a listing of <vdi>/data/ shows: dot names are XO's temporary files, not disks.
export function vhdDirectoryNames(dataListing: readonly ListedEntry[]): string[] {
  return dataListing
    .filter((e) => e.isDirectory && e.name.endsWith('.vhd') && !e.name.startsWith('.'))
    .map((e) => e.name);
}

// A name without a datetime (a legacy uuid name) can belong to any backup: the newest one governs it. Paired by the
// names' datetimes; the newest is the one whose window ends last (`instant` counts from its arrival, protect/arrival.ts).
function newestAtOrAfter<B extends { datetime: string; instant: number }>(
  backups: readonly B[],
  instant: number | undefined,
): B | undefined {
  let newest: B | undefined;
  for (const backup of backups)
    if (
      (instant === undefined || (parseBackupDatetime(backup.datetime) ?? backup.instant) >= instant) &&
      (newest === undefined || backup.instant > newest.instant)
    )
      newest = backup;
  return newest;
}
