import { completionOf, unitsOf } from '../backup/vm.js';
import { backupsOf } from '../backup/vm.js';
import type { VmSnapshot } from '../backup/snapshot.js';
import { AppError } from '../errors.js';
import type { VmBackup } from '../remote/model.js';
import { selectBackup, type Refusal } from './plan.js';

export interface GatherOptions {
  backup?: string;
  now: number;
  // The settle time for this remote (backup/completion.ts: settleTimeFor).
  settleMs: number;
}

export interface Gathered {
  backup: VmBackup;
  // Relative to the remote root; a directory unit is copied whole.
  units: string[];
  notes: string[];
  problems: Refusal[];
}

// Pure: one backup of a VM folder and everything XO reads to restore it, as the backup model says (backup/vm.ts): its
// json, xva, disks, the VHD each alias points to, and each disk's whole parent chain (on an encrypted remote, by
// name: every alias and VHD directory of its VDI folders up to its datetime).
export function gatherBackup(snapshot: VmSnapshot, options: GatherOptions): Gathered {
  const { folder } = snapshot;
  if (!snapshot.found && snapshot.problems.length > 0)
    throw new AppError('STAGE_SOURCE_REFUSED', `${folder} is ${snapshot.problems[0]!.reason}`, {
      value: folder,
      hint: 'someone with access to the remote planted it: investigate before restoring from this remote',
    });
  if (!snapshot.found)
    throw new AppError('STAGE_NOT_FOUND', `There is no folder ${folder} on this remote`, {
      value: snapshot.vm,
      hint: 'give the uuid of a VM with backups there: ls <remote root>/xo-vm-backups',
    });
  const candidates = backupsOf(snapshot).map((backup) => ({
    ...backup,
    complete: completionOf(snapshot, backup, options.now, options.settleMs).complete,
  }));
  const selected = selectBackup(candidates, options.backup);
  if (selected.backup === undefined)
    throw new AppError('STAGE_NOT_FOUND', `VM ${snapshot.vm}: ${selected.reason}`, {
      value: options.backup ?? snapshot.vm,
      hint: selected.hint,
    });
  const backup = selected.backup;
  const found = unitsOf(snapshot, backup);
  const notes: string[] = [];
  const problems: Refusal[] = [...snapshot.problems, ...found.problems];
  for (const missing of found.missing)
    problems.push({
      path: `${folder}/${missing}`,
      reason: "named by the backup's json, but missing (or not where XO writes it): XO cannot restore this backup",
    });
  if (snapshot.encrypted && found.chain.length > 0)
    notes.push(
      "encrypted remote: VHD chains cannot be read, so every alias and VHD directory of the backup's VDI folders " +
        'up to its datetime is copied',
    );
  if (!snapshot.encrypted)
    for (const disk of found.disks.filter((d) => d.unknown))
      notes.push(
        `the parent chain of ${folder}/${disk.disk} could not be read (a damaged header, or a parent missing): ` +
          'every older VHD of its folder is copied; XO may still fail to restore it',
      );
  const units = [...found.units, ...found.chain].map((u) => `${folder}/${u.path}`);
  return { backup, units: [...new Set(units)], notes, problems };
}
