import path from 'node:path';
import { isVmMetadataName, parseBackupDatetime } from '../remote/datetime.js';
import { resolveAliasTarget, type ListedEntry, type VdiFolder } from '../remote/model.js';

// Something in a VM folder that the daemon may have locked, with the datetime that governs it if one can be told.
export interface RebuildCandidate {
  // Relative to the VM folder.
  path: string;
  isDirectory: boolean;
  instant: number | undefined;
}

const BACKUP_PART = /^(\d{8}T\d{6}Z?)\.(json|xva|xva\.checksum|vhd|alias\.vhd)$/;

// Pure: every unit of a VM folder the daemon could have locked, orphans included (VHDs whose json XO deleted,
// VHD directories a merge left under an older name). A unit's datetime comes from its own name, or else from the
// newest alias pointing to it; a unit with neither has none (reported, never guessed).
export function vmRebuildCandidates(
  folder: readonly ListedEntry[],
  vdis: readonly VdiFolder[],
  dataFolders: ReadonlyMap<string, ListedEntry[]>,
  aliases: ReadonlyMap<string, string>,
): RebuildCandidate[] {
  const candidates = new Map<string, RebuildCandidate>();
  const add = (relative: string, isDirectory: boolean, instant: number | undefined): void => {
    const known = candidates.get(relative);
    if (known === undefined) candidates.set(relative, { path: relative, isDirectory, instant });
    else if (instant !== undefined && (known.instant === undefined || instant > known.instant)) known.instant = instant;
  };
  for (const entry of folder) {
    if (!entry.isFile || !(isVmMetadataName(entry.name) || BACKUP_PART.test(entry.name))) continue;
    add(entry.name, false, parseBackupDatetime(entry.name));
  }
  for (const vdi of vdis) {
    for (const entry of vdi.entries) {
      if (!BACKUP_PART.test(entry.name) || entry.name.startsWith('.')) continue;
      add(`${vdi.path}/${entry.name}`, entry.isDirectory, parseBackupDatetime(entry.name));
    }
    for (const entry of dataFolders.get(vdi.path) ?? []) {
      if (entry.name.startsWith('.') || !entry.name.endsWith('.vhd')) continue;
      add(`${vdi.path}/data/${entry.name}`, entry.isDirectory, parseBackupDatetime(entry.name));
    }
  }
  for (const [alias, content] of aliases) {
    const target = resolveAliasTarget(alias, content);
    const known = target === undefined ? undefined : candidates.get(target);
    if (known !== undefined) add(known.path, known.isDirectory, parseBackupDatetime(path.posix.basename(alias)));
  }
  return [...candidates.values()];
}
