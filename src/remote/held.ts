import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  type BigIntStats,
  type Stats,
} from 'node:fs';
import path from 'node:path';
import { AppError, errnoCode } from '../errors.js';
import type { RemoteRoot } from './root.js';

// Root reads what an attacker can rename: every folder is opened inside its parent's descriptor
// (`/proc/self/fd/<parent>/<name>`, the openat of a language without one) without following a link, so a folder
// swapped for a symlink after it was checked is refused, never read through. Non-blocking: a FIFO must not hang.
export const FOLDER_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
const FILE_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;
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

// A read that met a folder swapped for a link after its listing: nothing is read through it, so it is not there.
export function unlessLinked<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch (error) {
    if (error instanceof NotAFolder) return undefined;
    throw error;
  }
}

// Folders of one tree held by descriptor, by path relative to its top ('' is the top). Descriptors live as long as
// the tree (one call or one command): nothing is kept across calls that could go stale.
export class HeldTree {
  readonly #fds = new Map<string, number>();

  protected constructor(
    top: number,
    readonly decrypt?: (data: Buffer) => Buffer | undefined,
  ) {
    this.#fds.set('', top);
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

  // The path of an entry, for calls that take a path; throws ENOENT when its folder is missing.
  pathIn(relative: string): string {
    const place = this.pathOf(relative);
    if (place === undefined) throw Object.assign(new Error(`${relative}: no such folder`), { code: 'ENOENT' });
    return place;
  }

  // A folder's entries by the types readdir reports (links not followed); [] when it does not exist. Throws
  // NotAFolder when it, or a folder on the way, is a link or a file.
  list(relative: string): HeldEntry[] {
    const fd = this.folder(relative);
    if (fd === undefined) return [];
    return readdirSync(procPath(fd), { withFileTypes: true }).map((e) => ({
      name: e.name,
      isDirectory: e.isDirectory(),
      isFile: e.isFile(),
      isSymlink: e.isSymbolicLink(),
    }));
  }

  // The entry itself (a link is not followed); undefined when missing.
  lstat(relative: string): Stats | undefined {
    const place = this.pathOf(relative);
    if (place === undefined) return undefined;
    return relative === '' ? fstatSync(this.folder('') as number) : lstatSync(place, { throwIfNoEntry: false });
  }

  // `read` on a regular file of the tree, opened non-blocking without following a link; undefined when the entry is
  // missing or anything but a regular file. An lstat first, so a device is never opened (an open alone can act on
  // one); the fstat judges what was opened.
  readFile<T>(relative: string, read: (fd: number, size: number, stats: BigIntStats) => T | undefined): T | undefined {
    const place = this.pathOf(relative);
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
      const stats = fstatSync(fd, { bigint: true });
      return stats.isFile() ? read(fd, Number(stats.size), stats) : undefined;
    } finally {
      closeSync(fd);
    }
  }

  // A whole file up to `limit` bytes, never past it even when it grows while read; undefined when larger.
  readSmall(relative: string, limit: number): Buffer | undefined {
    return this.readFile(relative, (fd, size) =>
      size > limit ? undefined : this.contentOf(relative, readWhole(fd, size)),
    );
  }

  // A file's bytes as XO reads them: decrypted on a remote opened with its key (every file XO writes there but
  // encryption.json, remote/encryption.ts); undefined when they do not decrypt.
  contentOf(relative: string, data: Buffer | undefined): Buffer | undefined {
    return data === undefined || this.decrypt === undefined || relative === 'encryption.json'
      ? data
      : this.decrypt(data);
  }

  // Ranges of a regular file through one open (a VHD's footer, then the header it places): `read` gives `length`
  // bytes at `offset`, undefined past the file's end.
  readRanges<T>(
    relative: string,
    use: (read: (offset: number, length: number) => Buffer | undefined) => T | undefined,
  ): T | undefined {
    return this.readFile(relative, (fd, size) =>
      use((offset, length) => {
        if (offset + length > size) return undefined;
        const buffer = Buffer.allocUnsafe(length);
        return readFully(fd, buffer, offset) === length ? buffer : undefined;
      }),
    );
  }

  close(): void {
    for (const fd of this.#fds.values()) closeSync(fd);
    this.#fds.clear();
  }
}

// A listed entry, as readdir reports it (links not followed).
export interface HeldEntry {
  name: string;
  isDirectory: boolean;
  isFile: boolean;
  isSymlink: boolean;
}

// A remote opened for reading: its root's descriptor, checked on the descriptor to be where the root was resolved
// at start, and the folders below it held as they are walked. Passed to whatever reads the remote (status, verify,
// stage-restore, backup/snapshot.ts); closed by whoever opened it. Relative paths are relative to the root.
export class HeldRemote extends HeldTree implements RemoteRoot {
  private constructor(
    top: number,
    readonly root: string,
    readonly realRoot: string,
    decrypt?: (data: Buffer) => Buffer | undefined,
  ) {
    super(top, decrypt);
  }

  // The root opened following the admin's own links above it. Throws REMOTE_LINK_ON_PATH when it no longer resolves
  // to `realRoot`.
  static open(remote: RemoteRoot): HeldRemote {
    const flags = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NONBLOCK;
    return new HeldRemote(openTop(remote.root, flags, remote.realRoot), remote.root, remote.realRoot, remote.decrypt);
  }

  // A path below the root (as path.join writes it), relative to the root; undefined for any other.
  relativeOf(file: string): string | undefined {
    return isPlainlyBelow(this.root, file) ? file.slice(this.root.length + 1) : undefined;
  }
}

// An open file of `size` bytes (as fstat said), whole; undefined when it grew past that while read.
export function readWhole(fd: number, size: number): Buffer | undefined {
  // One byte more than the file held: reading it means the file grew.
  const buffer = Buffer.allocUnsafe(size + 1);
  const length = readFully(fd, buffer, 0);
  return length > size ? undefined : buffer.subarray(0, length);
}

// `act` with the remote held open, closed after, whatever happens.
export async function withHeldRemote<T>(remote: RemoteRoot, act: (held: HeldRemote) => Promise<T>): Promise<T> {
  const held = HeldRemote.open(remote);
  try {
    return await act(held);
  } finally {
    held.close();
  }
}

// Reads until the buffer is full or the file ends (readSync may return less than asked); returns the bytes read.
export function readFully(fd: number, buffer: Buffer, position: number): number {
  let length = 0;
  for (let read = -1; read !== 0 && length < buffer.length; length += read)
    read = readSync(fd, buffer, length, buffer.length - length, position + length);
  return length;
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
