import { constants } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { execa } from 'execa';
import { syncFolder } from '../atomic.js';
import { forEachLimited, TakeTurns } from '../concurrency.js';
import { errnoCode } from '../errors.js';

// fsyncs in flight at once: the disk commits them together, the thread pool runs four.
const SYNCS_AT_ONCE = 16;
// From this many files and folders, one syncfs of the index's filesystem costs less than an fsync each
// (docs/dev/performance-history.md, "Group commit").
const SYNCFS_FROM = 64;
// syncfs writes whatever else is unwritten on that filesystem too (XO's backups, when they share it; the units about to
// be locked, which chattr writes back anyway): taken only while the machine holds less unwritten data than this per
// file, about what writing it costs against one fsync each (docs/dev/performance-history.md, "Group commit").
const DIRTY_BYTES_PER_FILE = 64 * 1024;
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

// Group commit: `files` (their data) and `folders` (the names in them), all on the filesystem of `anchor`, reach the
// disk in one step. A large group takes one syncfs (`sync -f`), a small one or a busy disk an fdatasync per file and an
// fsync per folder, all in flight. A file gone meanwhile has nothing left to sync.
export async function commitGroup(anchor: string, files: readonly string[], folders: readonly string[]): Promise<void> {
  const count = files.length + folders.length;
  if (count === 0) return;
  if (count >= SYNCFS_FROM && (await dirtyBytes()) <= count * DIRTY_BYTES_PER_FILE && (await syncFilesystem(anchor)))
    return;
  // Files and folders in flight together: both must be durable before the caller goes on, in no order between them,
  // and an idle batch (one backup) then waits for one disk round trip instead of two.
  const all = [...files.map((file) => ({ file, folder: false })), ...folders.map((file) => ({ file, folder: true }))];
  await forEachLimited(all, SYNCS_AT_ONCE, ({ file, folder }) => (folder ? syncFolder(file) : syncFileData(file)));
}

// What the writers of one index (its entries, its window records) wrote and did not make durable yet: one flush makes it
// all durable in one group commit, the write-ahead's one disk round trip before the flag.
export class PendingSync {
  readonly #files = new Set<string>();
  readonly #folders = new Set<string>();
  // Taken by the flush running now: not durable until it ends.
  readonly #flushing = new Set<string>();
  // One flush at a time: a flush called while another runs returns only once what that one took is on disk too.
  readonly #flushes = new TakeTurns();

  // `anchor`: a path on the filesystem every file and folder added is on (for its syncfs).
  constructor(readonly anchor: string) {}

  add(files: Iterable<string>, folders: Iterable<string> = []): void {
    for (const file of files) this.#files.add(file);
    for (const folder of folders) this.#folders.add(folder);
  }

  async flush(): Promise<void> {
    await this.#flushes.run(() => this.#flushAdded());
  }

  // Returns once each of `files` (and the folders added with it) is durable: at once when a flush already made it so.
  async ensure(files: Iterable<string>): Promise<void> {
    for (const file of files) if (this.#files.has(file) || this.#flushing.has(file)) return this.flush();
  }

  async #flushAdded(): Promise<void> {
    const files = [...this.#files];
    const folders = [...this.#folders];
    this.#files.clear();
    this.#folders.clear();
    for (const file of files) this.#flushing.add(file);
    try {
      await commitGroup(this.anchor, files, folders);
    } catch (error) {
      this.add(files, folders);
      throw error;
    } finally {
      this.#flushing.clear();
    }
  }
}

// Unwritten and being-written page cache, machine-wide (an upper bound of the index filesystem's); unknown counts as
// too much.
async function dirtyBytes(): Promise<number> {
  try {
    const info = await readFile('/proc/meminfo', 'utf8');
    let kb = 0;
    for (const field of ['Dirty', 'Writeback']) {
      const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(info);
      if (match === null) return Number.POSITIVE_INFINITY;
      kb += Number(match[1]);
    }
    return kb * 1024;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

// Node has no syncfs(2); coreutils' `sync -f` calls it (and, since Linux 5.8, reports a write-back error). False when it
// could not: the caller falls back to an fsync per file.
async function syncFilesystem(anchor: string): Promise<boolean> {
  const result = await execa('sync', ['-f', '--', anchor], {
    env: { LC_ALL: 'C', LANG: 'C', PATH: process.env.PATH ?? DEFAULT_PATH },
    extendEnv: false,
    reject: false,
    stdio: 'ignore',
  });
  return result.exitCode === 0;
}

async function syncFileData(file: string): Promise<void> {
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return;
    throw error;
  }
  try {
    await handle.datasync();
  } finally {
    await handle.close();
  }
}
