import type { AttributesAdapter } from '../attributes/adapter.js';
import type { Examined } from '../remote/read.js';
import type { BackupRef, LeafFolder } from './context.js';
import type { FolderReport } from './reconcile.js';
import { addRequest } from './request.js';

// What reads the immutable flags: the flag helper, one run for many paths.
export type FlagReader = Pick<AttributesAdapter, 'isImmutable'>;

// A unit a full proof found locked as indexed, kept until its flag is read.
export interface IndexedUnit {
  unit: string;
  examined: Examined;
  recursive: boolean;
  backup: BackupRef;
}

export const FLAG_OFF_REASON = 'indexed as locked but its immutable flag is off: it is locked again';

// "Unchanged since the lock" is not "locked": an entry written for a unit never locked (or a lock that never reached
// the flag) records its identity exactly. The full proof reads the flags of the units it found locked as indexed, in
// one helper run for the folder, and asks again for each whose flag is off. Event reconciles keep the identity check.
export async function relockFlagsOff(
  folder: LeafFolder,
  units: readonly IndexedUnit[],
  flags: FlagReader,
  isConfined: (unit: string) => Promise<boolean>,
  report: FolderReport,
): Promise<void> {
  if (units.length === 0) return;
  const read = await flags.isImmutable(
    folder.remote,
    units.map((u) => u.unit),
  );
  for (const { unit, examined, recursive, backup } of units) {
    // undefined: gone, or no longer a plain file or directory; the next reconcile sees what is there now.
    if (read.get(unit) !== false) continue;
    (report.warnings ??= []).push({ path: unit, security: true, reason: FLAG_OFF_REASON });
    addRequest(folder, unit, examined, recursive, backup, report, await isConfined(unit));
  }
}
