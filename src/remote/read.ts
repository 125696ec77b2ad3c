import { fstatSync, lstatSync } from 'node:fs';
import path from 'node:path';
import { AppError } from '../errors.js';
import { isPlainlyBelow, linkOnPath, NotAFolder, type HeldEntry, type HeldRemote, type HeldTree } from './held.js';
import type { RemoteRoot } from './root.js';
import { identityOf, type Identity } from './identity.js';
import type { ListedEntry, VdiFolder } from './model.js';

// Thin reads around the pure model, through a held remote (remote/held.ts) by path relative to its root: one readdir
// per folder, no stat for what a listing already tells. Synchronous: a caller that reads many yields between them
// (concurrency.ts: yieldIfDue), the thread pool's hop cost more than the calls.

// `read` at `relative`: undefined when a folder on the way is missing or is a file, or when the entry read as a
// folder is itself a link or a file (swapped in since its parent's listing: not entered). A folder on the way that
// is a symbolic link throws REMOTE_LINK_ON_PATH: nothing is read through it.
function onTheWay<T>(held: HeldRemote, relative: string, read: () => T | undefined): T | undefined {
  try {
    return read();
  } catch (error) {
    if (!(error instanceof NotAFolder)) throw error;
    if (error.reason === 'not a folder' || error.path === relative) return undefined;
    throw linkOnPath(path.join(held.root, relative), error);
  }
}

// A folder's entries; [] when it is missing, a file or a link.
export function listFolder(held: HeldRemote, relative: string): ListedEntry[] {
  return listHeld(held, relative).map(({ name, isDirectory, isFile }) => ({ name, isDirectory, isFile }));
}

// The same, saying which entries are symbolic links.
export function listHeld(held: HeldRemote, relative: string): HeldEntry[] {
  return onTheWay(held, relative, () => held.list(relative)) ?? [];
}

// vdis/<jobId>/<vdiUuid>/: two levels of folders, then each VDI folder's listing; symlinked folders are not entered.
export function listVdiFolders(held: HeldRemote, vmFolder: string): VdiFolder[] {
  return vdiFolderPaths(held, vmFolder).map((relative) => ({
    path: relative,
    entries: listFolder(held, path.posix.join(vmFolder, relative)),
  }));
}

// The VDI folders' paths relative to the VM folder ("vdis/<jobId>/<vdiUuid>"), not listed; none when the VM folder
// itself is a link (not entered, as its listing is not).
export function vdiFolderPaths(held: HeldRemote, vmFolder: string): string[] {
  const paths: string[] = [];
  if (onTheWay(held, vmFolder, () => held.folder(vmFolder)) === undefined) return paths;
  for (const job of listFolder(held, path.posix.join(vmFolder, 'vdis'))) {
    if (!job.isDirectory || job.name.startsWith('.')) continue;
    for (const vdi of listFolder(held, path.posix.join(vmFolder, 'vdis', job.name)))
      if (vdi.isDirectory && !vdi.name.startsWith('.')) paths.push(`vdis/${job.name}/${vdi.name}`);
  }
  return paths;
}

// Remote content is read only from a regular file, never through a symlink (the file's or a folder's on the way,
// swapped in after the listing), opened non-blocking (a FIFO must not hang the daemon, whose calls here are
// synchronous), and never past the limit, even when it grows while read. Aliases are a few bytes.
export function readSmallFile(held: HeldRemote, relative: string): string | undefined {
  return onTheWay(held, relative, () => held.readSmall(relative, 64 * 1024))?.toString('utf8');
}

export interface Examined {
  identity: Identity;
  type: 'file' | 'directory' | 'symlink' | 'other';
  links: number;
  size: number;
  mtimeMs: number;
}

// The entry itself (a link is not followed), reached like a read: through held folders.
export function examine(held: HeldRemote, relative: string): Examined | undefined {
  return onTheWay(held, relative, () => examineIn(held, relative));
}

export function examineIn(tree: HeldTree, relative: string): Examined | undefined {
  const place = tree.pathOf(relative);
  if (place === undefined) return undefined;
  const stats =
    relative === ''
      ? fstatSync(tree.folder('') as number, { bigint: true })
      : lstatSync(place, { bigint: true, throwIfNoEntry: false });
  if (stats === undefined) return undefined;
  return {
    identity: identityOf(stats),
    type: stats.isSymbolicLink() ? 'symlink' : stats.isFile() ? 'file' : stats.isDirectory() ? 'directory' : 'other',
    links: Number(stats.nlink),
    size: Number(stats.size),
    mtimeMs: Number(stats.mtimeMs),
  };
}

// A path below a remote's root (as path.join writes it), relative to it. Anything else is refused: nothing is opened
// by path.
export function relativeIn(remote: RemoteRoot, file: string): string {
  if (isPlainlyBelow(remote.root, file)) return file.slice(remote.root.length + 1);
  throw new AppError('REMOTE_PATH_OUTSIDE', `${file} is not below the remote's root ${remote.root}`, {
    value: file,
    hint: 'nothing is read outside a remote; this is a bug, please report it',
  });
}

// What examine gives, or the REMOTE_LINK_ON_PATH error it would throw.
export function examineOrLink(held: HeldRemote, relative: string): Examined | undefined | AppError {
  try {
    return examine(held, relative);
  } catch (error) {
    if (error instanceof AppError && error.code === 'REMOTE_LINK_ON_PATH') return error;
    throw error;
  }
}
