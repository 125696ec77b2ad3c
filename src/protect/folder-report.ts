import type { AttributesAdapter } from '../attributes/adapter.js';
import type { Identity } from '../remote/identity.js';
import type { Examined } from '../remote/read.js';
import type { BackupRef, LockRequest, Refusal } from './context.js';
import type { ProvenBackups } from './proven.js';

// What a reconcile is asked (protect/reconcile.ts) and what it returns, as values: their own module, so that what
// builds a report (date-folder.ts, request.ts, flag-proof.ts) does not import the reconcile that calls it.

export type FlagReader = Pick<AttributesAdapter, 'isImmutable'>;

// A unit a full proof found locked as indexed, kept until its flag is read.
export interface IndexedUnit {
  unit: string;
  examined: Examined;
  recursive: boolean;
  backup: BackupRef;
}

export interface ReconcileOptions {
  now: number;
  jsonSettleMs: number;
  // Backups proven locked before, skipped unless `full`; without it every backup is looked at.
  proven?: ProvenBackups;
  // Also lists the units locked as indexed in `flagsToRead`: their flags are read for the whole round (flag-proof.ts).
  full?: boolean;
  // Lock each backup's whole VHD chain until the newest backup needing it leaves its window (default true).
  protectChains?: boolean;
  // On encrypted remotes, reads the flag of a data directory that looks orphaned (remote/by-name.ts): a locked one stays
  // claimed. Without it such a directory's flag is not read, and it stays claimed (when in doubt, protect).
  flags?: FlagReader;
  // A backup named later than now + this is named in the future (default: maxClockJump's default, a day).
  maxClockJumpMs?: number;
  // false: a link where XO writes a folder is said, never settled (verify only reads).
  settle?: boolean;
}

// A complete VM backup this reconcile looked at: proven once every unit it governs is locked and indexed.
export interface ProvableBackup {
  json: string;
  identity: Identity;
}

export interface FolderReport {
  requests: LockRequest[];
  refusals: Refusal[];
  // Security warnings about what was locked all the same (a json naming more paths than XO ever writes).
  warnings?: Refusal[];
  // When an unfinished-looking json should be looked at again, if no event comes first.
  recheckAt?: number;
  // Empty when anything in the folder was refused: a folder with a gap proves nothing.
  provable: ProvableBackup[];
  // Jsons whose proof, if any, no longer holds (a refusal in the folder, a unit missing).
  unprovable?: string[];
  // A unit a complete backup names is not there (its folder moved aside, or not written yet): looked at again soon.
  unitsMissing?: boolean;
  // A VHD chain could not be read (encrypted, damaged header, parent missing): protected on the safe side.
  // Undefined when no chain was looked at (every backup proven, or chains not protected).
  chainUnknown?: boolean;
  // The backups looked at store flat .vhd files (undefined when none was looked at).
  flatVhds?: boolean;
  // A repair lift holds this VM until then: nothing of it was looked at or asked for (lift --vm --hold).
  heldUntil?: number;
  // A full proof's units locked as indexed, whose flags are still to be read (protect/flag-proof.ts).
  flagsToRead?: IndexedUnit[];
  // Backups of the folder past their window and left unlocked (on a first start: those past it by name).
  pastWindow?: number;
  // Links (or other entries XO never writes) met in or above a VM folder, each refused (undefined: not looked at).
  plantedLinks?: number;
  // A structural folder (xo-vm-backups, a schedule's folder) was settled in place of a link (protect/linked-folder.ts):
  // the leaves under it are to be listed and watched again.
  relist?: true;
}
