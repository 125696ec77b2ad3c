import { closeSync, constants, fchmodSync, fchownSync, fstatSync, mkdirSync, openSync, type Stats } from 'node:fs';
import { HeldTree, NotAFolder, openTop, procPath } from '../remote/held.js';
import type { SourceEntry } from './plan.js';

const FOLDER_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

// The staging target, held by descriptor like the remote (remote/held.ts), with the two writes staging makes.
export class TargetTree extends HeldTree {
  // `expectedReal`: the top must still resolve there (the target just judged).
  static open(top: string, expectedReal: string): TargetTree {
    return new TargetTree(openTop(top, FOLDER_FLAGS, expectedReal));
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

// A regular file of the remote opened for reading, without following a link or blocking on a FIFO; throws otherwise.
export function openSource(tree: HeldTree, relative: string): { fd: number; stats: Stats } {
  const fd = openSync(tree.pathIn(relative), constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  const stats = fstatSync(fd);
  if (!stats.isFile()) {
    closeSync(fd);
    throw new NotAFolder(relative, 'not a regular file');
  }
  return { fd, stats };
}

export function entryOf(tree: HeldTree, relative: string): SourceEntry | undefined {
  const stats = tree.lstat(relative);
  return stats === undefined ? undefined : toEntry(relative, stats);
}

// Every entry below a folder (the folder itself first), never through a link; a link is listed, not entered.
export function walk(tree: HeldTree, relative: string): SourceEntry[] {
  const top = entryOf(tree, relative);
  if (top === undefined) return [];
  const entries = [top];
  if (top.type !== 'directory') return entries;
  for (const child of tree.list(relative))
    entries.push(...walk(tree, relative === '' ? child.name : `${relative}/${child.name}`));
  return entries;
}

export { NotAFolder, procPath };

function toEntry(relative: string, stats: Stats): SourceEntry {
  return {
    path: relative,
    type: stats.isSymbolicLink() ? 'symlink' : stats.isFile() ? 'file' : stats.isDirectory() ? 'directory' : 'other',
    size: stats.size,
    links: stats.nlink,
    uid: stats.uid,
  };
}
