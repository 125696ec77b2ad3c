import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readSync, type Dirent } from 'node:fs';
import path from 'node:path';
import { yieldIfDue } from '../concurrency.js';
import { errnoCode } from '../errors.js';
import type { Identity } from './identity.js';
import type { ListedEntry, VdiFolder } from './model.js';

// Thin reads around the pure model: one readdir per folder, no stat for what a listing already tells.
// Synchronous calls between slices (concurrency.ts: yieldIfDue): the thread pool's hop cost more than the calls.

function toListed(entry: Dirent): ListedEntry {
  return { name: entry.name, isDirectory: entry.isDirectory(), isFile: entry.isFile() };
}

export async function listFolder(folder: string): Promise<ListedEntry[]> {
  try {
    await yieldIfDue();
    return readdirSync(folder, { withFileTypes: true }).map(toListed);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') return [];
    throw error;
  }
}

// vdis/<jobId>/<vdiUuid>/: two levels of folders, then each VDI folder's listing; symlinked folders are not entered.
export async function listVdiFolders(vmFolder: string): Promise<VdiFolder[]> {
  const folders: VdiFolder[] = [];
  for (const job of await listFolder(path.join(vmFolder, 'vdis'))) {
    if (!job.isDirectory || job.name.startsWith('.')) continue;
    for (const vdi of await listFolder(path.join(vmFolder, 'vdis', job.name))) {
      if (!vdi.isDirectory || vdi.name.startsWith('.')) continue;
      const relative = `vdis/${job.name}/${vdi.name}`;
      folders.push({ path: relative, entries: await listFolder(path.join(vmFolder, relative)) });
    }
  }
  return folders;
}

// Aliases are a few bytes; anything larger is not an alias XO wrote. Only a regular file is read, never through a
// symlink swapped in after the listing, opened non-blocking (a FIFO must not hang the daemon, whose calls here are
// synchronous), and never past the limit, even when it grows while read.
export async function readSmallFile(file: string, limit = 64 * 1024): Promise<string | undefined> {
  let fd: number;
  try {
    await yieldIfDue();
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT' || code === 'ELOOP') return undefined;
    throw error;
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile() || stats.size > limit) return undefined;
    // One byte more than the file held: reading it means the file grew, past what fstat said.
    const buffer = Buffer.allocUnsafe(stats.size + 1);
    let length = 0;
    for (let read = -1; read !== 0 && length < buffer.length; length += read)
      read = readSync(fd, buffer, length, buffer.length - length, length);
    return length > stats.size ? undefined : buffer.toString('utf8', 0, length);
  } finally {
    closeSync(fd);
  }
}

export interface Examined {
  identity: Identity;
  type: 'file' | 'directory' | 'symlink' | 'other';
  links: number;
  size: number;
  mtimeMs: number;
}

export async function examine(file: string): Promise<Examined | undefined> {
  try {
    await yieldIfDue();
    const stats = lstatSync(file, { bigint: true });
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
  } catch (error) {
    if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') return undefined;
    throw error;
  }
}
