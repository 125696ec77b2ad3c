import { closeSync, constants, lstatSync, openSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { AppError, errnoCode } from '../errors.js';
import type { RemoteRoot } from './root.js';

// Root reads what an attacker can rename: every folder is opened inside its parent's descriptor
// (`/proc/self/fd/<parent>/<name>`, the openat of a language without one) without following a link, so a folder
// swapped for a symlink after it was checked is refused, never read through. Non-blocking: a FIFO must not hang.
export const FOLDER_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
export const FILE_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;
const MAX_OPEN_FOLDERS = 256;

export function procPath(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

// A name inside a held folder, for calls that take a path: nothing above the folder is resolved again.
export function inFolder(fd: number, name: string): string {
  return `${procPath(fd)}/${name}`;
}

export class NotAFolder extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path}: ${reason}`);
  }
}

// Folders of one tree held by descriptor, by path relative to its top ('' is the top). Descriptors live as long as
// the tree (one call or one command): nothing is kept across calls that could go stale.
export class HeldTree {
  readonly #fds = new Map<string, number>();

  protected constructor(top: number) {
    this.#fds.set('', top);
  }

  // `top` opened with `flags`; `expectedReal`: it must resolve there, judged on the descriptor (no race).
  static openTop(top: string, flags: number, expectedReal?: string): HeldTree {
    return new HeldTree(openTop(top, flags, expectedReal));
  }

  // The folder's descriptor; undefined when it does not exist. Throws NotAFolder for a symlink or a file.
  // A chain of VHD directories can hold many thousand folders: past a bound, the descriptors are opened again.
  folder(relative: string): number | undefined {
    if (this.#fds.size > MAX_OPEN_FOLDERS)
      for (const [name, fd] of this.#fds)
        if (name !== '') {
          closeSync(fd);
          this.#fds.delete(name);
        }
    return this.#folder(relative);
  }

  #folder(relative: string): number | undefined {
    const known = this.#fds.get(relative);
    if (known !== undefined) return known;
    const parent = this.#folder(parentOf(relative));
    if (parent === undefined) return undefined;
    const place = inFolder(parent, path.posix.basename(relative));
    try {
      const fd = openSync(place, FOLDER_FLAGS);
      this.#fds.set(relative, fd);
      return fd;
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'ENOENT') return undefined;
      // With O_DIRECTORY, Linux reports a link as ENOTDIR: only an lstat (on this error path alone) tells them apart.
      if (code === 'ELOOP' || code === 'ENOTDIR')
        throw new NotAFolder(
          relative,
          code === 'ELOOP' || lstatSync(place, { throwIfNoEntry: false })?.isSymbolicLink() === true
            ? 'a symbolic link'
            : 'not a folder',
        );
      throw error;
    }
  }

  // The path of an entry of a folder of this tree, through its parent's descriptor; undefined when that is missing.
  pathOf(relative: string): string | undefined {
    if (relative === '') return procPath(this.#fds.get('') as number);
    const parent = this.folder(parentOf(relative));
    return parent === undefined ? undefined : inFolder(parent, path.posix.basename(relative));
  }

  close(): void {
    for (const fd of this.#fds.values()) closeSync(fd);
    this.#fds.clear();
  }
}

export function openTop(top: string, flags: number, expectedReal?: string): number {
  const fd = openSync(top, flags);
  if (expectedReal !== undefined && readlinkSync(procPath(fd)) !== expectedReal) {
    closeSync(fd);
    throw new AppError('REMOTE_LINK_ON_PATH', `${top} no longer resolves to ${expectedReal}`, {
      value: top,
      hint: 'a folder of the remote was replaced by a symbolic link (an attack, or a remount); check the remote',
    });
  }
  return fd;
}

export function parentOf(relative: string): string {
  const parent = path.posix.dirname(relative);
  return parent === '.' ? '' : parent;
}

// Remote roots resolved at start, by configured root: a path below one is read from a descriptor of that root.
const roots = new Map<string, RemoteRoot>();

export function holdRemoteRoot(remote: RemoteRoot): void {
  roots.set(remote.root, { root: remote.root, realRoot: remote.realRoot });
}

// The remote a path is plainly below (the deepest, should roots nest), and the path relative to its root.
export function locateInRemote(file: string): { remote: RemoteRoot; relative: string } | undefined {
  let found: RemoteRoot | undefined;
  for (const remote of roots.values())
    if (isPlainlyBelow(remote.root, file) && (found === undefined || remote.root.length > found.root.length))
      found = remote;
  return found === undefined ? undefined : { remote: found, relative: file.slice(found.root.length + 1) };
}

// A remote's tree: its root opened following the admin's own links above it, then checked, on the descriptor, to be
// where it was at start. Throws REMOTE_LINK_ON_PATH when it is not.
export function openRemoteTree(remote: RemoteRoot): HeldTree {
  return HeldTree.openTop(
    remote.root,
    constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NONBLOCK,
    remote.realRoot,
  );
}

// `dir` is the root or below it, written the way path.join writes it (no "//", ".", ".." or trailing "/").
export function isPlainlyBelow(root: string, dir: string): boolean {
  if (root.length < 2 || root.endsWith('/') || !dir.startsWith(root)) return false;
  if (dir.length === root.length) return true;
  return (
    dir[root.length] === '/' &&
    !dir.endsWith('/') &&
    !dir.includes('//') &&
    !dir.includes('/./') &&
    !dir.includes('/../') &&
    !dir.endsWith('/.') &&
    !dir.endsWith('/..')
  );
}

// A folder on the way was a symbolic link (swapped in after a check): read nothing, say so.
export function linkOnPath(file: string, cause: NotAFolder | AppError): AppError {
  if (cause instanceof AppError) return cause;
  return new AppError('REMOTE_LINK_ON_PATH', `${file}: the folder ${cause.path} is ${cause.reason}, not read through`, {
    value: file,
    hint: 'a folder of the remote was replaced by a symbolic link (an attack?); check the remote',
    cause,
  });
}
