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

// Aliases are a few bytes; anything larger is not an alias XO wrote.
export async function readSmallFile(file: string, limit = 64 * 1024): Promise<string | undefined> {
  return (await readSmallBuffer(file, limit))?.toString('utf8');
}

// Remote content is read only from a regular file, never through a symlink swapped in after the listing, opened
// non-blocking (a FIFO must not hang the daemon, whose calls here are synchronous), and never past the limit, even
// when it grows while read.
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
    return stats.isFile() ? read(fd, stats.size) : undefined;
  } finally {
    closeSync(fd);
  }
}

function readFully(fd: number, buffer: Buffer, position: number): number {
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
