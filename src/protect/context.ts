import type { RemoteContext } from '../context/remote-context.js';
import type { Identity } from '../remote/identity.js';
import type { BackupKind } from '../remote/patterns.js';

// A folder where a completion signal can appear: a VM folder, or a config or pool metadata date folder.
export interface LeafFolder {
  remote: RemoteContext;
  kind: BackupKind;
  path: string;
  // Found as a symbolic link where XO writes a folder (remote/scan.ts): refused as long as it is one.
  linked?: true;
}

export interface BackupRef {
  // What names the backup in logs: the json of a VM backup, the folder of a config or pool backup.
  label: string;
  datetime: string;
  instant: number;
  completedAt: number;
  // Named later than now + maxClockJump: `instant` is its arrival, not its name, and it claims only its own units.
  namedInTheFuture?: boolean;
  // The moment the daemon first found it complete (protect/arrival.ts): recorded with its json's or folder's window.
  arrived?: number;
}

// One unit to lock, with the backup that governs its window.
export interface LockRequest {
  remote: RemoteContext;
  kind: BackupKind;
  unit: string;
  recursive: boolean;
  backup: BackupRef;
  // Found locked as indexed for an older backup with this identity: its window and entry are re-dated, its flag not
  // set again (protect/request.ts, lockedForOlder).
  lockedAs?: Identity;
  // As its reconcile examined it: its window is written ahead by it (protect/lock-windows.ts), kept if the flag helper
  // locks that very inode.
  examined?: Identity;
}

export interface Refusal {
  path: string;
  reason: string;
  security: boolean;
}
