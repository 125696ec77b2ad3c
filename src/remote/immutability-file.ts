import { randomBytes } from 'node:crypto';
import { lstat, rename } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import type { AttributesAdapter, Within } from '../attributes/adapter.js';
import { writeFileAtomic } from '../atomic.js';
import { errnoCode } from '../errors.js';

export const IMMUTABILITY_FILE = 'immutability.json';

export interface ImmutabilityStatus {
  since: number;
  immutable: boolean;
  duration: number;
  version: string;
  daemon: 'xo-immutable-backups';
}

// What stood at the status file's name and was not a file this daemon could have written: moved aside, kept whole.
export interface PlantedEntry {
  path: string;
  // 'a directory', 'a symbolic link', 'a regular file with 2 hard links'...
  found: string;
  movedTo: string;
}

// A failure after a planted entry was moved aside still says so: the move is the security event.
export class ImmutabilityFileError extends Error {
  override readonly name = 'ImmutabilityFileError';
  readonly planted: PlantedEntry | undefined;

  constructor(message: string, planted: PlantedEntry | undefined, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.planted = planted;
  }
}

// XO shows a padlock on a remote with this file at its root; the prior art's fields are kept so XO reads it the same.
export function immutabilityStatus(durationMs: number, now: number, version: string): ImmutabilityStatus {
  return { since: now, immutable: true, duration: durationMs, version, daemon: 'xo-immutable-backups' };
}

// Rewritten at every start and locked, so a client of the remote cannot remove the padlock or change what it says.
// Left unlocked only when a remote is made mutable for good. XO's user can write at the root: whatever else stands at
// the name (a folder, a link, a FIFO, a file with another name) is moved aside, never followed, and returned.
export async function writeImmutabilityFile(
  remote: Within,
  status: ImmutabilityStatus,
  attributes: AttributesAdapter,
  options = { lock: true },
): Promise<{ planted?: PlantedEntry }> {
  const target = path.join(remote.root, IMMUTABILITY_FILE);
  const found = await foundAt(target);
  const planted = found === undefined || found === 'ours' ? undefined : await moveAside(target, found, status.since);
  const fail = (message: string, cause?: unknown): ImmutabilityFileError =>
    new ImmutabilityFileError(message, planted, cause);
  if (found === 'ours') {
    const [unlocked] = await attributes.setImmutable(remote, [{ path: target, recursive: false }], false);
    if (unlocked?.status === 'failed') throw fail(`cannot unlock ${target} to rewrite it: ${unlocked.message}`);
  }
  try {
    // 0644 whatever the service's umask: XO reads the file as a non-root NFS or SMB user.
    await writeFileAtomic(target, `${JSON.stringify(status, null, 2)}\n`, 0o644);
  } catch (error) {
    // The file left as it was is locked again: unlocked, a client could delete it and the next start refuse the root.
    if (found === 'ours' && options.lock)
      await attributes.setImmutable(remote, [{ path: target, recursive: false }], true).catch(() => undefined);
    throw fail(`cannot write ${target}: ${systemError(error)}`, error);
  }
  if (!options.lock) return planted === undefined ? {} : { planted };
  const [locked] = await attributes.setImmutable(remote, [{ path: target, recursive: false }], true);
  if (locked?.status !== 'ok')
    throw fail(`cannot lock ${target}: ${locked?.status === 'failed' ? locked.message : 'it vanished'}`);
  return planted === undefined ? {} : { planted };
}

// 'ours': a regular file with one name, as this daemon writes it; undefined: nothing there.
async function foundAt(target: string): Promise<string | undefined> {
  let stats: Stats;
  try {
    stats = await lstat(target);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw new ImmutabilityFileError(`cannot read ${target}: ${(error as Error).message}`, undefined, error);
  }
  if (stats.isFile()) return stats.nlink === 1 ? 'ours' : `a regular file with ${stats.nlink} hard links`;
  if (stats.isDirectory()) return 'a directory';
  if (stats.isSymbolicLink()) return 'a symbolic link';
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isSocket()) return 'a socket';
  return 'a device file';
}

// A rename of the entry itself, within the root, to a dot name XO never reads: a link is moved, not followed, and a
// folder keeps what it holds, for the admin to look at.
async function moveAside(target: string, found: string, now: number): Promise<PlantedEntry> {
  const stamp = `${new Date(now).toISOString().slice(0, 19).replace(/[-:]/g, '')}Z`;
  let movedTo = path.join(path.dirname(target), `.${IMMUTABILITY_FILE}.planted-${stamp}`);
  if (await exists(movedTo)) movedTo = `${movedTo}-${randomBytes(4).toString('hex')}`;
  try {
    await rename(target, movedTo);
  } catch (error) {
    throw new ImmutabilityFileError(
      `${target} is ${found} and cannot be moved aside: ${systemError(error)}`,
      undefined,
      error,
    );
  }
  return { path: target, found, movedTo };
}

async function exists(file: string): Promise<boolean> {
  try {
    await lstat(file);
    return true;
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return false;
    throw error;
  }
}

// Stable across tries (no temporary's random name), so that a failure tried again is logged once.
function systemError(error: unknown): string {
  const code = errnoCode(error);
  const syscall = (error as NodeJS.ErrnoException).syscall;
  return code === undefined ? (error as Error).message : `${code}${syscall === undefined ? '' : ` on ${syscall}`}`;
}
