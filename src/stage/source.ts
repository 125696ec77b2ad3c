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
  type Stats,
} from 'node:fs';
import path from 'node:path';
import { HeldTree, NotAFolder, openTop, parentOf, procPath } from '../remote/held.js';
import type { ListedEntry } from '../remote/model.js';
import type { SourceEntry } from './plan.js';

const FOLDER_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

// A folder tree read through descriptors (remote/held.ts: each folder opened inside its parent's descriptor without
// following a link), so nothing read or copied can be a path an attacker swapped for a symlink after it was checked.
// Relative paths; '' is the top.
export class FolderTree extends HeldTree {
  // `expectedReal`: the top must still resolve there (a remote root checked at start, or a target just judged).
  static open(top: string, expectedReal?: string): FolderTree {
    return new FolderTree(openTop(top, FOLDER_FLAGS, expectedReal));
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
}

export { NotAFolder, procPath };

function childPath(parentFd: number, relative: string): string {
  return `${procPath(parentFd)}/${path.posix.basename(relative)}`;
}

function toEntry(relative: string, stats: Stats): SourceEntry {
  return {
    path: relative,
    type: stats.isSymbolicLink() ? 'symlink' : stats.isFile() ? 'file' : stats.isDirectory() ? 'directory' : 'other',
    size: stats.size,
    links: stats.nlink,
  };
}
