import {
  accessSync,
  closeSync,
  constants,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppError, errnoCode } from '../errors.js';
import { flockExclusive } from './flock.js';

// In indexPath: whoever holds an exclusive flock(2) on it is the one process writing the index (the daemon, or a
// command such as lift or rebuild-index while no daemon runs). Never replaced or removed: the lock is on its inode.
export const LOCK_FILE = 'daemon.lock';
// The command name the daemon records; the other names are those of the commands (`lift`, `rebuild-index`, ...).
export const DAEMON_COMMAND = 'protect';
// A holder writes its record just after it locked: a refused process reads again for this long before it calls the
// holder unknown (a record of a process that crashed holding nothing is stale).
const RECORD_WAIT_MS = 2_000;
const RECORD_POLL_MS = 50;

// Who holds the lock, as it wrote itself in the lock file.
export interface LockHolder {
  pid: number;
  command: string;
  since: string;
}

export type LockAttempt = { lock: InstanceLock } | { holder: LockHolder | undefined };

// Held until release() or the end of this process, whichever comes first (the kernel releases it on a crash).
export class InstanceLock {
  readonly file: string;
  #fd: number | undefined;

  constructor(file: string, fd: number) {
    this.file = file;
    this.#fd = fd;
  }

  release(): void {
    if (this.#fd === undefined) return;
    const fd = this.#fd;
    this.#fd = undefined;
    // The record goes first, so that a record left in the file always names a process that was holding the lock.
    try {
      ftruncateSync(fd, 0);
    } finally {
      closeSync(fd);
    }
  }
}

// Takes the lock without waiting for it, or says who holds it. Checks first that indexPath can be written, so that a
// process without the right to write it creates nothing there. A probe (no command) writes no record.
export async function takeInstanceLock(indexPath: string, command: string | undefined): Promise<LockAttempt> {
  const file = path.join(indexPath, LOCK_FILE);
  const fd = openLockFile(indexPath, file);
  try {
    const started = Date.now();
    for (;;) {
      if ((await flockExclusive(fd, file)) === 'locked') {
        if (command === undefined) return { lock: new InstanceLock(file, fd) };
        const record: LockHolder = { pid: process.pid, command, since: new Date().toISOString() };
        ftruncateSync(fd, 0);
        writeSync(fd, `${JSON.stringify(record)}\n`, 0);
        return { lock: new InstanceLock(file, fd) };
      }
      const holder = readHolder(file);
      if (holder !== undefined && processExists(holder.pid)) {
        closeSync(fd);
        return { holder };
      }
      if (Date.now() - started > RECORD_WAIT_MS) {
        closeSync(fd);
        return { holder: undefined };
      }
      await sleep(RECORD_POLL_MS);
    }
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

// Who holds the lock now, without keeping it: taken and released at once when free.
export async function lockHolder(indexPath: string): Promise<LockHolder | undefined | 'free'> {
  const attempt = await takeInstanceLock(indexPath, undefined);
  if ('lock' in attempt) {
    attempt.lock.release();
    return 'free';
  }
  return attempt.holder;
}

export function readHolder(file: string): LockHolder | undefined {
  try {
    const record = JSON.parse(readFileSync(file, 'utf8')) as Partial<LockHolder>;
    if (typeof record.pid === 'number' && typeof record.command === 'string' && typeof record.since === 'string')
      return { pid: record.pid, command: record.command, since: record.since };
  } catch {
    // Empty (released, or written a moment from now) or unreadable: unknown.
  }
  return undefined;
}

function openLockFile(indexPath: string, file: string): number {
  assertWritable(indexPath);
  try {
    mkdirSync(indexPath, { recursive: true, mode: 0o700 });
    const fd = openSync(file, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
    if (fstatSync(fd).isFile()) return fd;
    closeSync(fd);
    throw Object.assign(new Error(`${file} is not a regular file`), { code: 'EISDIR' });
  } catch (error) {
    throw cannotWrite(indexPath, file, error);
  }
}

// The nearest folder that exists on the way to indexPath must be writable by this process: as root it is, unless
// the filesystem is read-only; as anyone else nothing is created.
function assertWritable(indexPath: string): void {
  let folder = path.resolve(indexPath);
  for (;;) {
    try {
      accessSync(folder, constants.F_OK);
      break;
    } catch (error) {
      const parent = path.dirname(folder);
      if (errnoCode(error) !== 'ENOENT' || parent === folder) throw cannotWrite(indexPath, folder, error);
      folder = parent;
    }
  }
  try {
    accessSync(folder, constants.W_OK | constants.X_OK);
  } catch (error) {
    throw cannotWrite(indexPath, folder, error);
  }
}

function cannotWrite(indexPath: string, where: string, error: unknown): AppError {
  const errno = errnoCode(error) ?? 'EUNKNOWN';
  const denied = errno === 'EACCES' || errno === 'EPERM';
  return new AppError('INDEX_UNUSABLE', `Cannot write the index at ${indexPath}: ${where}: ${errno}`, {
    value: indexPath,
    hint: denied
      ? `run it as root (the index is root's, 0700); nothing was written`
      : errno === 'EROFS'
        ? 'indexPath is on a read-only filesystem: mount it read-write, or under systemd add it to ReadWritePaths='
        : 'check indexPath in the config and the folder above it',
    cause: error,
  });
}

// Whether a process runs with this pid (EPERM: it does, as another user).
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
