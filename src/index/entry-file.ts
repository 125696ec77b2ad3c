import { closeSync, constants, fstatSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { errnoCode } from '../errors.js';

// Spaces a new entry is created with, room for what a later rewrite adds (lockedAt and an identity of six numbers of up
// to 20 digits, about 250 bytes): a rewrite that grew the file would change its size, which the journal can commit
// without the data, and a power loss then leaves the durable pending text followed by zeros, neither entry.
export const ROOM_TO_GROW = 320;
// An entry fits (about 600 bytes with its padding): one read, no fstat.
const scratch = Buffer.allocUnsafe(4096);

// An entry file's descriptor kept open from its create to its completion, and the size it was given.
export interface OpenEntry {
  fd: number;
  size: number;
}

// 'unlinked': the file was removed before the write ended (a lift in another process), the text went into a file no
// one will read. `kept`: the descriptor, still open, when the caller asked to keep it.
export interface EntryWrite {
  result: 'created' | 'rewritten' | 'unlinked';
  kept?: OpenEntry;
}

// Writes an entry's text into `target`: created with room to grow, or rewritten in place padded to its length, never
// longer (ROOM_TO_GROW). `create` false: only an entry that exists is rewritten (ENOENT otherwise).
// Synchronous: through the thread pool, 16 in flight, the burst's entries cost 2 to 3 times as much on this 2-core
// machine (docs/dev/performance-history.md, "Index entries").
export function writeEntryFile(target: string, text: string, create: boolean, keep: boolean): EntryWrite {
  // O_NOFOLLOW: a link planted in the index is refused, never written through.
  const flags = constants.O_WRONLY | constants.O_NOFOLLOW;
  let fd: number;
  let size = 0;
  try {
    // Most creates are new files: O_EXCL says so without an fstat.
    fd = openSync(target, create ? flags | constants.O_CREAT | constants.O_EXCL : flags, 0o600);
  } catch (error) {
    if (!create || errnoCode(error) !== 'EEXIST') throw error;
    fd = openSync(target, flags);
    size = fstatSync(fd).size;
  }
  let kept: OpenEntry | undefined;
  try {
    const written = writeOpenEntry({ fd, size }, text);
    if (written === undefined) return { result: 'unlinked' };
    if (keep) kept = { fd, size: written };
    return { result: size === 0 ? 'created' : 'rewritten', ...(kept === undefined ? {} : { kept }) };
  } finally {
    if (kept === undefined) closeSync(fd);
  }
}

// Rewrites an entry through a descriptor kept open since its create, then closes it; 'unlinked' as above.
export function completeOpenEntry(open: OpenEntry, text: string): 'rewritten' | 'unlinked' {
  try {
    return writeOpenEntry(open, text) === undefined ? 'unlinked' : 'rewritten';
  } finally {
    closeSync(open.fd);
  }
}

// The file's size after the write, or undefined when it has no name left. `size` 0: a new file.
function writeOpenEntry({ fd, size }: OpenEntry, text: string): number | undefined {
  const bytes = padded(text, size === 0 ? Buffer.byteLength(text) + ROOM_TO_GROW : size);
  writeSync(fd, bytes, 0, bytes.length, 0);
  const after = fstatSync(fd);
  return after.nlink === 0 ? undefined : after.size;
}

// The text (ending in a newline) with spaces before its newline up to `length` bytes; longer text is left whole.
export function padded(text: string, length: number): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length >= length) return bytes;
  return Buffer.concat([
    bytes.subarray(0, bytes.length - 1),
    Buffer.alloc(length - bytes.length, ' '),
    bytes.subarray(bytes.length - 1),
  ]);
}

// The text of an entry file, or undefined when it is gone. Synchronous: open, one read, close (docs/performance.md).
export function readEntryText(file: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const length = readSync(fd, scratch, 0, scratch.length, 0);
    return length < scratch.length ? scratch.toString('utf8', 0, length) : readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}
