import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readSync, type Dirent } from 'node:fs';
import path from 'node:path';
import { yieldIfDue } from '../concurrency.js';
import { AppError, errnoCode } from '../errors.js';
import { FILE_FLAGS, HeldTree, linkOnPath, locateInRemote, NotAFolder, openRemoteTree, procPath } from './held.js';
import type { Identity } from './identity.js';
import type { ListedEntry, VdiFolder } from './model.js';

// Thin reads around the pure model: one readdir per folder, no stat for what a listing already tells.
// Synchronous calls between slices (concurrency.ts: yieldIfDue): the thread pool's hop cost more than the calls.

function toListed(entry: Dirent): ListedEntry {
  return { name: entry.name, isDirectory: entry.isDirectory(), isFile: entry.isFile() };
}

// `act` on a path's place in a held tree (remote/held.ts): below a remote resolved at start, walked from its root,
// checked on the descriptor to be where it was; elsewhere (no remote's path: a demo, a test) from the path's own
// folder. undefined when a folder on the way is missing or is a file. A folder on the way that is a symbolic link
// (swapped in after the listing) throws REMOTE_LINK_ON_PATH: nothing is read through it.
async function atHeld<T>(
  file: string,
  asFolder: boolean,
  act: (tree: HeldTree, relative: string) => T | undefined | Promise<T | undefined>,
): Promise<T | undefined> {
  await yieldIfDue();
  const located = locateInRemote(file);
  let tree: HeldTree;
  try {
    tree =
      located === undefined
        ? HeldTree.openTop(asFolder ? file : path.dirname(file), constants.O_RDONLY | constants.O_DIRECTORY)
        : openRemoteTree(located.remote);
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw error;
  }
  try {
    return await act(tree, relative(located, file, asFolder));
  } catch (error) {
    if (!(error instanceof NotAFolder)) throw error;
    // The path itself a link or a file (a folder to list): not there, as a file that is a link is not read.
    if (error.reason === 'not a folder' || error.path === relative(located, file, asFolder)) return undefined;
    throw linkOnPath(file, error);
  } finally {
    tree.close();
  }
}

function relative(located: { relative: string } | undefined, file: string, asFolder: boolean): string {
  return located?.relative ?? (asFolder ? '' : path.basename(file));
}

// A folder to list that is a file or a link (swapped in since its parent's listing) is not entered: [].
function listIn(tree: HeldTree, relative: string): ListedEntry[] {
  let fd: number | undefined;
  try {
    fd = tree.folder(relative);
  } catch (error) {
    if (error instanceof NotAFolder && error.path === relative) return [];
    throw error;
  }
  return fd === undefined ? [] : readdirSync(procPath(fd), { withFileTypes: true }).map(toListed);
}

export async function listFolder(folder: string): Promise<ListedEntry[]> {
  return (await atHeld(folder, true, listIn)) ?? [];
}

// vdis/<jobId>/<vdiUuid>/: two levels of folders, then each VDI folder's listing; symlinked folders are not entered.
// One walk from the root for the whole VM folder.
export async function listVdiFolders(vmFolder: string): Promise<VdiFolder[]> {
  const folders: VdiFolder[] = [];
  await atHeld(vmFolder, true, async (tree, top) => {
    const at = (relative: string): string => (top === '' ? relative : `${top}/${relative}`);
    for (const job of listIn(tree, at('vdis'))) {
      if (!job.isDirectory || job.name.startsWith('.')) continue;
      for (const vdi of listIn(tree, at(`vdis/${job.name}`))) {
        if (!vdi.isDirectory || vdi.name.startsWith('.')) continue;
        const relative = `vdis/${job.name}/${vdi.name}`;
        await yieldIfDue();
        folders.push({ path: relative, entries: listIn(tree, at(relative)) });
      }
    }
    return undefined;
  });
  return folders;
}

// Aliases are a few bytes; anything larger is not an alias XO wrote.
export async function readSmallFile(file: string, limit = 64 * 1024): Promise<string | undefined> {
  return (await readSmallBuffer(file, limit))?.toString('utf8');
}

// Remote content is read only from a regular file, never through a symlink (the file's or a folder's on the way,
// swapped in after the listing), opened non-blocking (a FIFO must not hang the daemon, whose calls here are
// synchronous), and never past the limit, even when it grows while read.
export async function readSmallBuffer(file: string, limit: number): Promise<Buffer | undefined> {
  return withRegularFile(file, (fd, size) => {
    if (size > limit) return undefined;
    // One byte more than the file held: reading it means the file grew, past what fstat said.
    const buffer = Buffer.allocUnsafe(size + 1);
    const length = readFully(fd, buffer, 0);
    return length > size ? undefined : buffer.subarray(0, length);
  });
}

// `length` bytes at `offset` of a regular file (a VHD's footer or header); undefined when the file is shorter.
export async function readRange(file: string, offset: number, length: number): Promise<Buffer | undefined> {
  return withRegularFile(file, (fd, size) => {
    if (offset + length > size) return undefined;
    const buffer = Buffer.allocUnsafe(length);
    return readFully(fd, buffer, offset) === length ? buffer : undefined;
  });
}

async function withRegularFile<T>(
  file: string,
  read: (fd: number, size: number) => T | undefined,
): Promise<T | undefined> {
  return atHeld(file, false, (tree, relative) => {
    const place = tree.pathOf(relative);
    // An lstat first, so a device is never opened (an open alone can act on one); the fstat below judges what was.
    if (place === undefined || lstatSync(place, { throwIfNoEntry: false })?.isFile() !== true) return undefined;
    let fd: number;
    try {
      fd = openSync(place, FILE_FLAGS);
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'ENOENT' || code === 'ELOOP' || code === 'ENXIO') return undefined;
      throw error;
    }
    try {
      const stats = fstatSync(fd);
      return stats.isFile() ? read(fd, stats.size) : undefined;
    } finally {
      closeSync(fd);
    }
  });
}

// Reads until the buffer is full or the file ends (readSync may return less than asked); returns the bytes read.
export function readFully(fd: number, buffer: Buffer, position: number): number {
  let length = 0;
  for (let read = -1; read !== 0 && length < buffer.length; length += read)
    read = readSync(fd, buffer, length, buffer.length - length, position + length);
  return length;
}

export interface Examined {
  identity: Identity;
  type: 'file' | 'directory' | 'symlink' | 'other';
  links: number;
  size: number;
  mtimeMs: number;
}

// The entry itself (a link is not followed), reached like a read: through held folders.
export async function examine(file: string): Promise<Examined | undefined> {
  return atHeld(file, false, examineIn);
}

// Many entries of one remote (the jsons or units of one VM folder) through one walk from its root: each folder on the
// way is opened once for the batch. Per entry: what examine gives, or the REMOTE_LINK_ON_PATH error it would throw.
export async function examineAll(files: readonly string[]): Promise<(Examined | undefined | AppError)[]> {
  const located = files.map(locateInRemote);
  const remote = located[0]?.remote;
  if (remote === undefined || located.some((l) => l?.remote !== remote))
    return Promise.all(files.map((file) => examine(file).catch((error: unknown) => asLinkOnPath(error))));
  let tree: HeldTree;
  try {
    tree = openRemoteTree(remote);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') return files.map(() => undefined);
    return files.map(() => asLinkOnPath(error));
  }
  try {
    const out: (Examined | undefined | AppError)[] = [];
    for (const [i, file] of files.entries()) {
      await yieldIfDue();
      const relative = (located[i] as { relative: string }).relative;
      try {
        out.push(examineIn(tree, relative));
      } catch (error) {
        if (!(error instanceof NotAFolder)) throw error;
        out.push(error.reason === 'not a folder' || error.path === relative ? undefined : linkOnPath(file, error));
      }
    }
    return out;
  } finally {
    tree.close();
  }
}

function asLinkOnPath(error: unknown): AppError {
  if (error instanceof AppError && error.code === 'REMOTE_LINK_ON_PATH') return error;
  throw error;
}

function examineIn(tree: HeldTree, relative: string): Examined | undefined {
  const place = tree.pathOf(relative);
  if (place === undefined) return undefined;
  const stats =
    relative === ''
      ? fstatSync(tree.folder('') as number, { bigint: true })
      : lstatSync(place, { bigint: true, throwIfNoEntry: false });
  if (stats === undefined) return undefined;
  return {
    identity: {
      dev: stats.dev.toString(),
      ino: stats.ino.toString(),
      size: stats.size.toString(),
      mtimeNs: stats.mtimeNs.toString(),
      ctimeNs: stats.ctimeNs.toString(),
      birthtimeNs: stats.birthtimeNs.toString(),
    },
    type: stats.isSymbolicLink() ? 'symlink' : stats.isFile() ? 'file' : stats.isDirectory() ? 'directory' : 'other',
    links: Number(stats.nlink),
    size: Number(stats.size),
    mtimeMs: Number(stats.mtimeMs),
  };
}
