import {
  closeSync,
  constants,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  writeSync,
  type Dir,
  type Dirent,
} from 'node:fs';
import { chmod, mkdir, opendir, readdir, rmdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { CapGauge } from '../caps.js';
import { forEachLimited, TakeTurns, yieldIfDue } from '../concurrency.js';
import { AppError, errnoCode } from '../errors.js';
import { commitGroup } from './commit.js';
import { entryName, parseEntry, type IndexEntry } from './entry.js';
import { HoldStore } from '../holds/store.js';
import { recordIndexFormat } from './format.js';
import { UnitWindows } from './windows.js';

const DAY_NAME = /^\d{4}-\d{2}-\d{2}$/;
const ENTRY_NAME = /^[0-9a-f]{64}$/;
const NAME_BATCH = 1024;
// Spaces a new entry is created with, room for what a later rewrite adds (lockedAt and an identity of six numbers of up
// to 20 digits, about 250 bytes): a rewrite that grew the file would change its size, which the journal can commit
// without the data, and a power loss then leaves the durable pending text followed by zeros, neither entry.
const ROOM_TO_GROW = 320;
// Unlinks in flight at once when entries are forgotten (the thread pool runs four).
const UNLINKS_AT_ONCE = 16;

// One file of a day bucket as found on disk. `entry` is undefined when the file is not one of our entries
// (the prior art's bare-path entries, or a damaged file): `text` then holds what it says.
export interface StoredEntry {
  day: string;
  name: string;
  entry: IndexEntry | undefined;
  text: string;
}

// The day-bucketed index of one remote: <indexPath>/<remoteId>/<YYYY-MM-DD>/<sha256(path)>, one JSON file per unit.
// Synchronous calls between slices (yieldIfDue): the thread pool costs more here (docs/performance.md).
export class IndexStore {
  readonly folder: string;
  readonly windows: UnitWindows;
  // VMs whose backups a repair lift left unlocked for a while (lift --vm --hold).
  readonly holds: HoldStore;
  readonly #knownDays = new Set<string>();
  readonly #counts = new Map<string, { mtimeNs: bigint; count: number }>();
  // Written since the last sync(): entry files, and the folders whose entries changed.
  readonly #unsyncedFiles = new Set<string>();
  readonly #unsyncedFolders = new Set<string>();
  // One sync at a time: a sync called while another runs (the proven backups' save, a lock batch) returns only once
  // what that one took is on disk too.
  readonly #syncs = new TakeTurns();
  // Entries against maxIndexEntries, once the daemon counts them (countForCap); commands run by an admin (rebuild-index)
  // are never capped.
  readonly entries: CapGauge;
  #capped = false;

  constructor(indexPath: string, remoteId: string, maxEntries = Number.MAX_SAFE_INTEGER) {
    this.folder = path.join(indexPath, remoteId);
    this.entries = new CapGauge(maxEntries);
    this.windows = new UnitWindows(indexPath, remoteId);
    this.holds = new HoldStore(indexPath, remoteId);
  }

  // Only root reads the index: a map of every protected path is worth little to an attacker, and nothing to share.
  async open(): Promise<void> {
    try {
      await mkdir(path.dirname(this.folder), { recursive: true, mode: 0o700 });
      await mkdir(this.folder, { recursive: true, mode: 0o700 });
      await chmod(this.folder, 0o700);
      await recordIndexFormat(path.dirname(this.folder));
    } catch (error) {
      if (error instanceof AppError) throw error;
      throw new AppError(
        'INDEX_UNUSABLE',
        `Cannot create the index folder ${this.folder}: ${(error as Error).message}`,
        {
          value: this.folder,
          hint:
            'check indexPath in the config; the folder must be writable by root ' +
            'and on a writable filesystem (systemd: ReadWritePaths)',
          cause: error,
        },
      );
    }
  }

  // From now on a new entry is refused (INDEX_FULL) while the entries counted reach the cap; a rewrite never is.
  async countForCap(): Promise<void> {
    this.#capped = true;
    await this.countEntries();
  }

  entryPath(day: string, unitPath: string): string {
    return path.join(this.folder, day, entryName(unitPath));
  }

  async read(day: string, unitPath: string): Promise<IndexEntry | undefined> {
    try {
      await yieldIfDue();
      const file = this.entryPath(day, unitPath);
      // stat first: most reads in a burst miss, and a miss is cheaper than a thrown ENOENT (docs/performance.md).
      if (statSync(file, { throwIfNoEntry: false }) === undefined) return undefined;
      return parseEntry(readFileSync(file, 'utf8'));
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return undefined;
      throw error;
    }
  }

  // Created once with room to grow, rewritten in place padded to the old length: a create costs most
  // (docs/performance.md), and a rewrite never changes the size (ROOM_TO_GROW).
  // A racing reader or a crash sees an unparsable entry, which every reader treats conservatively.
  async write(entry: IndexEntry): Promise<void> {
    const dayFolder = path.join(this.folder, entry.day);
    const target = path.join(dayFolder, entryName(entry.path));
    for (let attempt = 1; ; attempt++) {
      await yieldIfDue();
      const create = !(this.#capped && this.entries.reached);
      if (create && !this.#knownDays.has(entry.day)) {
        if (mkdirSync(dayFolder, { recursive: true, mode: 0o700 }) !== undefined)
          this.#unsyncedFolders.add(this.folder);
        this.#knownDays.add(entry.day);
      }
      try {
        // Written into a file a lift in another process unlinked meanwhile: written again, into a new one.
        const written = rewriteInPlace(target, `${JSON.stringify(entry)}\n`, create);
        if (written !== false) {
          this.#unsyncedFiles.add(target);
          if (written === 'created') {
            this.#unsyncedFolders.add(dayFolder);
            this.entries.set(this.entries.count + 1);
          }
          return;
        }
        if (attempt > 2)
          throw Object.assign(new Error(`index entry ${target} was removed while being written, ${attempt} times`), {
            code: 'EAGAIN',
          });
      } catch (error) {
        if (!create && errnoCode(error) === 'ENOENT') {
          if (await this.#redate(entry, target)) return;
          throw this.#full(entry.path);
        }
        if (errnoCode(error) !== 'ENOENT' || attempt > 1) throw error;
        this.#knownDays.delete(entry.day);
      }
    }
  }

  // At the cap a unit already indexed is never refused a newer entry: its entry of an older bucket moves here (a
  // re-dating, not a new entry). Rewritten first, then renamed: a crash between leaves it in the old bucket saying
  // the newer date, which only keeps the unit locked longer.
  async #redate(entry: IndexEntry, target: string): Promise<boolean> {
    const name = entryName(entry.path);
    const instant = Date.parse(entry.backupDatetime);
    for (const day of await this.listDays()) {
      if (day >= entry.day) break;
      const older = path.join(this.folder, day, name);
      const stored = statSync(older, { throwIfNoEntry: false }) === undefined ? undefined : readEntryFile(older);
      // Only an older entry of this very path moves; one saying a later date stays where it is.
      if (stored?.path !== entry.path || !(Date.parse(stored.backupDatetime) < instant)) continue;
      if (rewriteInPlace(older, `${JSON.stringify(entry)}\n`, false) === false) continue;
      const dayFolder = path.dirname(target);
      if (mkdirSync(dayFolder, { recursive: true, mode: 0o700 }) !== undefined) this.#unsyncedFolders.add(this.folder);
      this.#knownDays.add(entry.day);
      renameSync(older, target);
      this.#unsyncedFiles.add(target);
      this.#unsyncedFolders.add(dayFolder);
      this.#unsyncedFolders.add(path.dirname(older));
      return true;
    }
    return false;
  }

  #full(unitPath: string): AppError {
    return new AppError(
      'INDEX_FULL',
      `the index of ${path.basename(this.folder)} holds ${this.entries.count} entries, its cap (maxIndexEntries)`,
      {
        value: unitPath,
        hint:
          'the unit is locked without an entry, and lift never unlocks it: remove the folders nobody made, or raise ' +
          'maxIndexEntries, then run `xo-immutable-backups rebuild-index`',
      },
    );
  }

  // Every entry written since the last call reaches the disk, with its day folder: the lock path calls it once per
  // batch, after the entries and before chattr (write-ahead), so a power loss never loses the entry of a locked unit.
  // One group commit for them all (index/commit.ts), not one fsync after the other.
  async sync(): Promise<void> {
    await this.#syncs.run(() => this.#syncWritten());
  }

  async #syncWritten(): Promise<void> {
    const files = [...this.#unsyncedFiles];
    const folders = [...this.#unsyncedFolders];
    this.#unsyncedFiles.clear();
    this.#unsyncedFolders.clear();
    try {
      await commitGroup(this.folder, files, folders);
    } catch (error) {
      for (const file of files) this.#unsyncedFiles.add(file);
      for (const folder of folders) this.#unsyncedFolders.add(folder);
      throw error;
    }
  }

  // The day buckets present, oldest first; none when the index was never created.
  async listDays(): Promise<string[]> {
    try {
      return (await readdir(this.folder, { withFileTypes: true }))
        .filter((e) => e.isDirectory() && DAY_NAME.test(e.name))
        .map((e) => e.name)
        .sort();
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return [];
      throw error;
    }
  }

  // The entry names of one day bucket; none when it is gone.
  async names(day: string): Promise<string[]> {
    try {
      return (await readdir(path.join(this.folder, day))).filter((n) => ENTRY_NAME.test(n));
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return [];
      throw error;
    }
  }

  // The same in batches, for buckets too large to hold as a list; each batch read synchronously (docs/performance.md).
  async *streamNames(day: string): AsyncGenerator<string[]> {
    let dir: Dir;
    try {
      dir = await opendir(path.join(this.folder, day), { bufferSize: NAME_BATCH });
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return;
      throw error;
    }
    try {
      for (;;) {
        const batch: string[] = [];
        let entry: Dirent | null = null;
        while (batch.length < NAME_BATCH && (entry = dir.readSync()) !== null)
          if (ENTRY_NAME.test(entry.name)) batch.push(entry.name);
        if (batch.length > 0) yield batch;
        if (entry === null) return;
        await yieldIfDue();
      }
    } finally {
      dir.closeSync();
    }
  }

  // How many entries a bucket holds, remembered by the bucket's mtime (an entry created or removed changes it; a
  // rewrite in place does not): a lift pass with nothing to lift costs one stat per bucket.
  async countNames(day: string): Promise<number> {
    let mtimeNs: bigint;
    try {
      mtimeNs = (await stat(path.join(this.folder, day), { bigint: true })).mtimeNs;
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return 0;
      throw error;
    }
    const known = this.#counts.get(day);
    if (known?.mtimeNs === mtimeNs) return known.count;
    let count = 0;
    for await (const batch of this.streamNames(day)) count += batch.length;
    this.#counts.set(day, { mtimeNs, count });
    return count;
  }

  // Every entry of the remote, as the protected_units metric counts them: one stat per bucket once counted.
  // Counted for the cap too, once the daemon does (entries written or removed meanwhile may be off by a few until the
  // next count).
  async countEntries(): Promise<number> {
    let count = 0;
    for (const day of await this.listDays()) count += await this.countNames(day);
    if (this.#capped) this.entries.set(count);
    return count;
  }

  async readDay(day: string): Promise<StoredEntry[]> {
    return this.readEntries(day, await this.names(day));
  }

  // An entry removed meanwhile is left out.
  async readEntries(day: string, names: readonly string[]): Promise<StoredEntry[]> {
    const dayFolder = path.join(this.folder, day);
    const read: StoredEntry[] = [];
    for (const name of names) {
      try {
        await yieldIfDue();
        const text = readFileSync(path.join(dayFolder, name), 'utf8');
        read.push({ day, name, entry: parseEntry(text), text });
      } catch (error) {
        if (errnoCode(error) !== 'ENOENT') throw error;
      }
    }
    return read;
  }

  // Forgets one entry (its day bucket stays: removeDayIfEmpty).
  async remove(day: string, name: string): Promise<void> {
    await this.removeAll([{ day, name }]);
  }

  // Forgets entries, many unlinks in flight: where the filesystem discards freed blocks each unlink waits for the disk,
  // and in flight their waits overlap (docs/performance.md). No sync: a crash leaves entries the next lift removes.
  async removeAll(entries: readonly { day: string; name: string }[]): Promise<void> {
    await forEachLimited(entries, UNLINKS_AT_ONCE, async ({ day, name }) => {
      try {
        await unlink(path.join(this.folder, day, name));
        if (this.#capped) this.entries.set(Math.max(0, this.entries.count - 1));
      } catch (error) {
        if (errnoCode(error) !== 'ENOENT') throw error;
      }
    });
  }

  async removeDayIfEmpty(day: string): Promise<boolean> {
    try {
      await rmdir(path.join(this.folder, day));
      this.#knownDays.delete(day);
      return true;
    } catch (error) {
      if (errnoCode(error) === 'ENOTEMPTY' || errnoCode(error) === 'EEXIST' || errnoCode(error) === 'ENOENT')
        return false;
      throw error;
    }
  }
}

// An entry that cannot be read is left where it is.
function readEntryFile(file: string): IndexEntry | undefined {
  try {
    return parseEntry(readFileSync(file, 'utf8'));
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}

// False when the file was unlinked before the write ended (the text went into a file no one will read); 'created'
// when the file was new (its folder changed too).
// `create` false: only an entry that exists is rewritten (ENOENT otherwise).
function rewriteInPlace(target: string, text: string, create: boolean): boolean | 'created' {
  // O_NOFOLLOW: a link planted in the index is refused, never written through.
  const flags = constants.O_WRONLY | constants.O_NOFOLLOW | (create ? constants.O_CREAT : 0);
  const fd = openSync(target, flags, 0o600);
  try {
    const { size } = fstatSync(fd);
    let bytes = Buffer.from(text, 'utf8');
    const length = size === 0 ? bytes.length + ROOM_TO_GROW : size;
    if (bytes.length < length)
      bytes = Buffer.concat([
        bytes.subarray(0, bytes.length - 1),
        Buffer.alloc(length - bytes.length, ' '),
        bytes.subarray(bytes.length - 1),
      ]);
    writeSync(fd, bytes, 0, bytes.length, 0);
    if (fstatSync(fd).nlink === 0) return false;
    return size === 0 ? 'created' : true;
  } finally {
    closeSync(fd);
  }
}
