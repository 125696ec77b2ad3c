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
}

// On an encrypted remote aliases and jsons are ciphertext, so which backup a VHD directory belongs to is read from
// names alone: data/<dt>.vhd is backup <dt>'s when <dt>.alias.vhd sits beside data/; any other (the base of a merged
// chain keeps an older name) belongs, once finished, to the newest backup of that VDI folder at or after its datetime.
// `backups`: the complete backups in their window; a backup is in a VDI folder when its alias is.
export function dataDirectoryClaims<B extends { datetime: string; instant: number }>(
  vdi: VdiFolder,
  data: readonly DataDirectory[],
  backups: readonly B[],
): Claim<B>[] {
  const aliases = new Set(vdi.entries.filter((e) => e.isFile && e.name.endsWith('.alias.vhd')).map((e) => e.name));
  const inFolder = backups.filter((b) => aliases.has(`${b.datetime}.alias.vhd`));
  const claims: Claim<B>[] = [];
  for (const directory of data) {
    const datetime = directory.name.slice(0, -'.vhd'.length);
    const owner = aliases.has(`${datetime}.alias.vhd`)
      ? inFolder.find((b) => b.datetime === datetime)
      : directory.finished
        ? newestAtOrAfter(inFolder, parseBackupDatetime(directory.name))
        : undefined;
    if (owner !== undefined) claims.push({ unit: { path: directory.path, recursive: true }, backup: owner });
  }
  return claims;
}

export function isFinishedVhdDirectory(listing: readonly ListedEntry[]): boolean {
  return VHD_DIRECTORY_FINAL_FILES.every((name) => listing.some((e) => e.isFile && e.name === name));
}

// With chains protected, by names alone (an encrypted VHD's parent cannot be read): every alias and finished directory
// of a VDI folder belongs to the newest complete backup of the folder at or after its datetime, so a delta's whole
// chain stays locked as long as it does. The safe side: a base XO could free may stay locked longer.
export function chainClaimsByName<B extends { datetime: string; instant: number }>(
  vdi: VdiFolder,
  data: readonly DataDirectory[],
  backups: readonly B[],
): Claim<B>[] {
  const aliases = vdi.entries.filter((e) => e.isFile && e.name.endsWith('.alias.vhd') && !e.name.startsWith('.'));
  const inFolder = backups.filter((b) => aliases.some((a) => a.name === `${b.datetime}.alias.vhd`));
  const claims: Claim<B>[] = [];
  const claim = (unitPath: string, name: string, recursive: boolean): void => {
    const owner = newestAtOrAfter(inFolder, parseBackupDatetime(name));
    if (owner !== undefined) claims.push({ unit: { path: unitPath, recursive }, backup: owner });
  };
  for (const alias of aliases) claim(`${vdi.path}/${alias.name}`, alias.name, false);
  for (const directory of data) if (directory.finished) claim(directory.path, directory.name, true);
  return claims;
}

// The VHD directories a listing of <vdi>/data/ shows: dot names are XO's temporary files, not disks.
export function vhdDirectoryNames(dataListing: readonly ListedEntry[]): string[] {
  return dataListing
    .filter((e) => e.isDirectory && e.name.endsWith('.vhd') && !e.name.startsWith('.'))
    .map((e) => e.name);
}

// A name without a datetime (a legacy uuid name) can belong to any backup: the newest one governs it.
function newestAtOrAfter<B extends { instant: number }>(
  backups: readonly B[],
  instant: number | undefined,
): B | undefined {
  let newest: B | undefined;
  for (const backup of backups)
    if (
      (instant === undefined || backup.instant >= instant) &&
      (newest === undefined || backup.instant > newest.instant)
    )
      newest = backup;
  return newest;
}
