// Types for the parts of harness.mjs the compatibility suite uses, so its tests typecheck under the strict tsconfig.
// XO's own objects (handler, adapter, cleanVm's result) stay opaque: the tests only pass them back to the harness.

export interface XoLog {
  level: number;
  namespace: string;
  message: string;
}

export const MiB: number;

export interface XoRemote {
  root: string;
  close(): Promise<void>;
}

export function openRemote(options: {
  root: string;
  useVhdDirectory?: boolean;
  encryptionKey?: string;
  retryEperm?: boolean;
}): Promise<XoRemote>;

export interface Vm {
  uuid: string;
}

export function makeVm(options: { disks: number[] }): Vm;

export interface WrittenBackup {
  // '20261201T120000Z'
  datetime: string;
  // relative to the remote root: xo-vm-backups/<vm>/<datetime>.json
  metadataPath: string;
  // VDIs XO exported in full because their parent failed checkBaseVdis's isMergeableParent()
  fellBackToFull: string[];
  baseCheckErrors?: { path: string; code: string | undefined }[];
  // per disk: the .vhd or .alias.vhd, relative to the remote root
  disks: { vdiUuid: string; snapshotUuid: string; path: string }[];
  // VDI uuid -> sha256 of the whole disk image this backup restores to
  expected: Record<string, string>;
}

export function writeChain(
  remote: XoRemote,
  vm: Vm,
  timestamps: number[],
  options?: { onWritten?: (backup: WrittenBackup) => Promise<void> },
): Promise<WrittenBackup[]>;

export function writeNightly(
  remote: XoRemote,
  vm: Vm,
  timestamp: number,
  // beforeAlias: runs with each disk's finished VHD directory (relative to the remote root), before its alias.
  options?: { full?: boolean; beforeAlias?: (dataPath: string, disk: number) => Promise<void> },
): Promise<WrittenBackup>;
export function twinOf(vm: Vm): Vm;

// VDI uuid -> sha256 of the restored disk image.
export function restoreBackup(remote: XoRemote, metadataPath: string): Promise<Record<string, string>>;
export function restoreMismatches(remote: XoRemote, backup: WrittenBackup): Promise<string[]>;

export interface ListedBackup {
  _filename: string;
  timestamp: number;
  mode: string;
  isImmutable?: boolean;
}

export function listVmBackups(remote: XoRemote, vmUuid: string): Promise<ListedBackup[]>;

export interface XoErrorInfo {
  code: string | undefined;
  message: string;
}

export interface RetentionOutcome {
  deleteError: XoErrorInfo | null;
  cleanError: XoErrorInfo | null;
  cleanResult: unknown;
  warnings: XoLog[];
}

export function runRetention(remote: XoRemote, vmUuid: string, backups: ListedBackup[]): Promise<RetentionOutcome>;
export function cleanVmInterrupted(
  remote: XoRemote,
  vmUuid: string,
  meanwhile: () => Promise<unknown>,
): Promise<RetentionOutcome & { interrupted: boolean }>;
export function pruneOldestBackup(
  remote: XoRemote,
  vmUuid: string,
): Promise<{ listed: ListedBackup[]; outcome: RetentionOutcome }>;

export function backupFiles(remote: XoRemote, backup: WrittenBackup): Promise<string[]>;
export function restoreFiles(remote: XoRemote, chain: WrittenBackup[], index: number): Promise<string[]>;
// path relative to root -> "<inode> <size> <sha256>", or the error code of reading it
export function fingerprints(root: string, files: readonly string[]): Promise<Record<string, string>>;
