import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fstatSync,
  mkdirSync,
  lstatSync,
  openSync,
  readdirSync,
  realpathSync,
  type Stats,
} from 'node:fs';
import path from 'node:path';
import { errnoCode } from '../errors.js';
import type { ListedEntry } from '../remote/model.js';
import type { SourceEntry } from './plan.js';

const MAX_OPEN_FOLDERS = 256;
const FOLDER_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

// A folder tree read through descriptors: each folder is opened inside its parent's descriptor
// (/proc/self/fd/<parent>/<name>, the openat of a language without one) without following a link, so nothing read or
// copied can be a path an attacker swapped for a symlink after it was checked. Relative paths; '' is the top.
export class FolderTree {
  readonly #fds = new Map<string, number>();

  private constructor(top: number) {
    this.#fds.set('', top);
  }

  // `expectedReal`: the top must still resolve there (a remote root checked at start, or a target just judged).
  static open(top: string, expectedReal?: string): FolderTree {
    const fd = openSync(top, FOLDER_FLAGS);
    if (expectedReal !== undefined && realpathSync.native(procPath(fd)) !== expectedReal) {
      closeSync(fd);
      throw new Error(`${top} no longer resolves to ${expectedReal}`);
    }
    return new FolderTree(fd);
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
    try {
      const fd = openSync(childPath(parent, relative), FOLDER_FLAGS);
      this.#fds.set(relative, fd);
      return fd;
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'ENOENT') return undefined;
      if (code === 'ELOOP' || code === 'ENOTDIR')
        throw new NotAFolder(relative, code === 'ELOOP' ? 'a symbolic link' : 'not a folder');
      throw error;
    }
  }

  // A folder's entries by the types readdir reports (links not followed); [] when it does not exist.
  list(relative: string): (ListedEntry & { isSymlink: boolean })[] {
    const fd = this.folder(relative);
    if (fd === undefined) return [];
    return readdirSync(procPath(fd), { withFileTypes: true }).map((e) => ({
      name: e.name,
      isDirectory: e.isDirectory(),
      isFile: e.isFile(),
      isSymlink: e.isSymbolicLink(),
    }));
  }

  // lstat inside the parent's descriptor; undefined when missing.
  stat(relative: string): Stats | undefined {
    const parent = this.folder(parentOf(relative));
    if (parent === undefined) return undefined;
    return lstatSync(childPath(parent, relative), { throwIfNoEntry: false });
  }

  entry(relative: string): SourceEntry | undefined {
    const stats = this.stat(relative);
    return stats === undefined ? undefined : toEntry(relative, stats);
  }

  // Every entry below a folder (the folder itself first), never through a link; a link is listed, not entered.
  walk(relative: string): SourceEntry[] {
    const top = this.entry(relative);
    if (top === undefined) return [];
    const entries = [top];
    if (top.type !== 'directory') return entries;
    for (const child of this.list(relative))
      entries.push(...this.walk(relative === '' ? child.name : `${relative}/${child.name}`));
    return entries;
  }

  // A regular file opened for reading, without following a link or blocking on a FIFO.
  openFile(relative: string, flags = constants.O_RDONLY | constants.O_NONBLOCK): { fd: number; stats: Stats } {
    const parent = this.folder(parentOf(relative));
    if (parent === undefined) throw Object.assign(new Error(`${relative}: no such folder`), { code: 'ENOENT' });
    const fd = openSync(childPath(parent, relative), flags | constants.O_NOFOLLOW);
    const stats = fstatSync(fd);
    if (!stats.isFile()) {
      closeSync(fd);
      throw new NotAFolder(relative, 'not a regular file');
    }
    return { fd, stats };
  }

  // The path of a child of a folder of this tree, for calls that take a path (copyFile, mkdir).
  pathIn(relative: string): string {
    const parent = this.folder(parentOf(relative));
    if (parent === undefined) throw Object.assign(new Error(`${relative}: no such folder`), { code: 'ENOENT' });
    return childPath(parent, relative);
  }

  // A new folder inside this tree, owned and moded as given (mkdir's mode is narrowed by the umask).
  makeFolder(relative: string, mode: number, uid: number, gid: number): void {
    mkdirSync(this.pathIn(relative), 0o700);
    const fd = this.folder(relative);
    if (fd === undefined) throw Object.assign(new Error(`${relative}: vanished after mkdir`), { code: 'ENOENT' });
    fchownSync(fd, uid, gid);
    fchmodSync(fd, mode & 0o7777);
  }

  close(): void {
    for (const fd of this.#fds.values()) closeSync(fd);
    this.#fds.clear();
  }
}

export class NotAFolder extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path}: ${reason}`);
  }
}

export function procPath(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

function childPath(parentFd: number, relative: string): string {
  return `${procPath(parentFd)}/${path.posix.basename(relative)}`;
}

function parentOf(relative: string): string {
  const parent = path.posix.dirname(relative);
  return parent === '.' ? '' : parent;
}

function toEntry(relative: string, stats: Stats): SourceEntry {
  return {
    path: relative,
    type: stats.isSymbolicLink() ? 'symlink' : stats.isFile() ? 'file' : stats.isDirectory() ? 'directory' : 'other',
    size: stats.size,
    links: stats.nlink,
  };
}
