import path from 'node:path';
import { isInside } from '../paths.js';
import { parseBackupDatetime } from '../remote/datetime.js';

// What stage-restore copies, decided from facts already read: pure, no I/O.

export interface BackupCandidate {
  datetime: string;
  instant: number;
  complete: boolean;
}

export type Selection<B> = { backup: B } | { backup?: undefined; reason: string; hint: string };

// The backup to stage: the one asked for (by its name's datetime, "20261122T061500Z", or an ISO time), else the
// newest complete one. An incomplete backup is never staged: XO would not list it.
export function selectBackup<B extends BackupCandidate>(backups: readonly B[], requested?: string): Selection<B> {
  const complete = backups.filter((b) => b.complete);
  const available = complete.length === 0 ? 'none' : complete.map((b) => b.datetime).join(', ');
  if (requested === undefined) {
    const newest = complete.reduce<B | undefined>(
      (a, b) => (a === undefined || b.instant > a.instant ? b : a),
      undefined,
    );
    if (newest !== undefined) return { backup: newest };
    return {
      reason: backups.length === 0 ? 'the VM folder holds no backup' : 'no backup of this VM is complete',
      hint: 'check the VM uuid (ls <root>/xo-vm-backups), or wait until XO has written the backup',
    };
  }
  const instant = requestedInstant(requested);
  if (instant === undefined)
    return { reason: `--backup "${requested}" is not a datetime`, hint: `use one of: ${available}` };
  const found = backups.find((b) => b.instant === instant);
  if (found === undefined)
    return { reason: `there is no backup ${requested} of this VM`, hint: `use one of: ${available}` };
  if (!found.complete)
    return {
      reason: `backup ${found.datetime} is not complete (XO is still writing its json, or stopped while writing it)`,
      hint: `wait, or use one of: ${available}`,
    };
  return { backup: found };
}

function requestedInstant(text: string): number | undefined {
  const byName = parseBackupDatetime(text);
  if (byName !== undefined && /^\d{8}T\d{6}Z?$/.test(text)) return byName;
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(text)) return undefined;
  const parsed = Date.parse(text);
  return Number.isNaN(parsed) ? undefined : parsed;
}

// One thing found on the remote, relative to its root, as lstat saw it (links not followed).
export interface SourceEntry {
  path: string;
  type: 'file' | 'directory' | 'symlink' | 'other';
  size: number;
  links: number;
  uid: number;
}

export interface Refusal {
  path: string;
  reason: string;
}

export interface CopyPlan {
  // Relative to the remote root, parents before children.
  directories: string[];
  files: { path: string; bytes: number }[];
  bytes: number;
  // Anything that is not a plain folder or a regular file of the VM folder's owner: nothing is copied while there is one.
  refusals: Refusal[];
  // Files with a second name, copied all the same: the VM folder's owner (XO's user) owns them, so XO could read them.
  secondNames: string[];
}

// The folders to create and the files to copy, each once, in an order that creates parents first.
// A remote is hostile input: a symlink, FIFO or device, or a file with a second hard link of another owner than the VM
// folder's (`owner`: it may be a file from outside the remote, copied into a folder XO can then read) is refused and
// named, never copied. A second name given to one of XO's own files (planted while XO wrote it) does not stop a restore.
export function planCopy(entries: readonly SourceEntry[], owner?: number): CopyPlan {
  const directories = new Set<string>();
  const files = new Map<string, number>();
  const refusals = new Map<string, string>();
  const secondNames: string[] = [];
  for (const entry of entries) {
    for (let parent = path.posix.dirname(entry.path); parent !== '.'; parent = path.posix.dirname(parent))
      directories.add(parent);
    if (entry.type === 'directory') directories.add(entry.path);
    else if (entry.type === 'symlink') refusals.set(entry.path, 'a symbolic link');
    else if (entry.type === 'other')
      refusals.set(entry.path, 'not a regular file or folder (a FIFO, socket or device)');
    else if (entry.links > 1 && entry.uid !== owner)
      refusals.set(
        entry.path,
        `a file with ${entry.links} hard links, of uid ${entry.uid}, not of the VM folder's owner (one may be a file ` +
          'outside the remote)',
      );
    else {
      if (entry.links > 1) secondNames.push(entry.path);
      files.set(entry.path, entry.size);
    }
  }
  const byPath = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  const fileList = [...files.entries()].sort(([a], [b]) => byPath(a, b)).map(([p, bytes]) => ({ path: p, bytes }));
  return {
    directories: [...directories].sort(byPath),
    files: fileList,
    bytes: fileList.reduce((sum, f) => sum + f.bytes, 0),
    refusals: [...refusals.entries()].sort(([a], [b]) => byPath(a, b)).map(([p, reason]) => ({ path: p, reason })),
    secondNames: secondNames.sort(byPath),
  };
}

// Filesystems whose content lives on another machine: the copy could not be verified where it is kept.
const NETWORK_FILESYSTEMS = new Set([
  'nfs',
  'nfs4',
  'cifs',
  'smb3',
  'smbfs',
  'ncpfs',
  '9p',
  'ceph',
  'afs',
  'glusterfs',
  'lustre',
  'gfs2',
  'ocfs2',
  'davfs',
  'sshfs',
]);

export function isNetworkFilesystem(type: string): boolean {
  return NETWORK_FILESYSTEMS.has(type) || type === 'fuse' || type.startsWith('fuse.');
}

export interface TargetFacts {
  // As given, and with links resolved (its nearest existing folder resolved, the rest appended).
  given: string;
  real: string;
  state: 'missing' | 'empty' | 'not-empty' | 'not-directory';
  filesystem: string;
}

export interface ProtectedRoot {
  id: string;
  root: string;
  realRoot: string;
}

export interface TargetProblem {
  message: string;
  hint: string;
}

// Where a staged copy may go: not inside a protected remote (the daemon would lock it, and XO's credentials reach
// it), a new or empty folder (nothing of XO's or the admin's is overwritten), on a local filesystem.
export function judgeTarget(target: TargetFacts, remotes: readonly ProtectedRoot[]): TargetProblem | undefined {
  for (const remote of remotes) {
    if (isInside(target.real, remote.realRoot) || isInside(target.given, remote.root))
      return {
        message: `${target.given} is inside the protected remote "${remote.id}" (${remote.realRoot})`,
        hint:
          'stage outside every protected remote root, e.g. beside it on the same filesystem ' +
          '(a reflink copy then takes no space): --to /srv/xo-restore-<vm>',
      };
  }
  if (target.state === 'not-directory')
    return { message: `${target.given} exists and is not a folder`, hint: 'name a new or empty folder' };
  if (target.state === 'not-empty')
    return {
      message: `${target.given} exists and is not empty`,
      hint: 'name a new or empty folder: nothing is ever overwritten',
    };
  if (isNetworkFilesystem(target.filesystem) || target.filesystem === 'unknown')
    return {
      message: `${target.given} is on a ${target.filesystem} filesystem, which cannot be verified from here`,
      hint:
        "stage onto a local filesystem of this server (the remote's own, if it is xfs or btrfs, copies by reflink), " +
        'and export that folder to XO',
    };
  return undefined;
}
