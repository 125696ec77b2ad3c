import { dayOf, isUnchangedSinceLock } from '../index/entry.js';
import type { Examined } from '../remote/read.js';
import type { BackupRef, LeafFolder, Refusal } from './context.js';
import type { FolderReport } from './reconcile.js';

// Locked by us and untouched since: its entry in the governing backup's day records this very inode and ctime, for
// that backup or a newer one (an older backup of the same day would end its window early).
export async function isLockedAsIndexed(
  folder: LeafFolder,
  backupInstant: number,
  unit: string,
  examined: Examined,
): Promise<boolean> {
  const entry = await folder.remote.index.read(dayOf(backupInstant), unit);
  return isUnchangedSinceLock(entry, examined.identity) && Date.parse(entry!.backupDatetime) >= backupInstant;
}

export function addRequest(
  folder: LeafFolder,
  unit: string,
  examined: Examined,
  recursive: boolean,
  backup: BackupRef,
  report: FolderReport,
  confined: boolean,
): void {
  const refusal = confined
    ? refusalFor(unit, examined)
    : {
        path: unit,
        reason: 'a folder on its path is a symbolic link (chattr would follow it out of the remote)',
        security: true,
      };
  if (refusal !== undefined) report.refusals.push(refusal);
  else
    report.requests.push({
      remote: folder.remote,
      kind: folder.kind,
      unit,
      // The kind claimed, not the one examined: a file swapped in where a directory was claimed (or the reverse) is
      // refused by the flag helper on its descriptor (EKIND) and tried again, never locked as the other kind.
      recursive,
      backup,
    });
}

// Only plain files and directories are units; a second hard link could lead to a file outside the backups.
export function refusalFor(unit: string, examined: Examined): Refusal | undefined {
  if (examined.type === 'symlink') return { path: unit, reason: 'it is a symbolic link', security: true };
  if (examined.type === 'other') return { path: unit, reason: 'it is not a regular file or directory', security: true };
  if (examined.type === 'file' && examined.links > 1)
    return { path: unit, reason: `it has ${examined.links} hard links`, security: true };
  return undefined;
}
