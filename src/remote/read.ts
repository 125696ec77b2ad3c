import { constants, fstatSync, lstatSync } from 'node:fs';
import path from 'node:path';
import { yieldIfDue } from '../concurrency.js';
import { AppError, errnoCode } from '../errors.js';
import { HeldTree, isPlainlyBelow, linkOnPath, NotAFolder, openRemoteTree, readFully } from './held.js';
import type { RemoteRoot } from './root.js';
import { identityOf, type Identity } from './identity.js';
import type { ListedEntry, VdiFolder } from './model.js';

// Thin reads around the pure model: one readdir per folder, no stat for what a listing already tells.
// Synchronous calls between slices (concurrency.ts: yieldIfDue): the thread pool's hop cost more than the calls.

// Transitional (docs/architecture.md): protect and lift still read by path, so the roots resolved at start are kept
// here, by configured root, and a path below one is read from a descriptor of that root. Readers that were given a
// HeldRemote do not use it.
const roots = new Map<string, RemoteRoot>();

export function holdRemoteRoot(remote: RemoteRoot): void {
  roots.set(remote.root, {
    root: remote.root,
    realRoot: remote.realRoot,
    ...(remote.decrypt === undefined ? {} : { decrypt: remote.decrypt }),
  });
}

// The remote a path is plainly below (the deepest, should roots nest), and the path relative to its root.
export function locateInRemote(file: string): { remote: RemoteRoot; relative: string } | undefined {
  let found: RemoteRoot | undefined;
  for (const remote of roots.values())
    if (isPlainlyBelow(remote.root, file) && (found === undefined || remote.root.length > found.root.length))
      found = remote;
  return found === undefined ? undefined : { remote: found, relative: file.slice(found.root.length + 1) };
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
  try {
    return tree.list(relative).map(({ name, isDirectory, isFile }) => ({ name, isDirectory, isFile }));
  } catch (error) {
    if (error instanceof NotAFolder && error.path === relative) return [];
    throw error;
  }
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
  return atHeld(file, false, (tree, relative) => tree.readSmall(relative, limit));
}

// `length` bytes at `offset` of a regular file (a VHD's footer or header); undefined when the file is shorter.
export async function readRange(file: string, offset: number, length: number): Promise<Buffer | undefined> {
  return atHeld(file, false, (tree, relative) => tree.readRange(relative, offset, length));
}

export { readFully };

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
