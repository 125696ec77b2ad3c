import { mkdirSync, readdirSync, renameSync, statSync, type Dir, type Dirent } from 'node:fs';
import { chmod, mkdir, opendir, readdir, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { CapGauge } from '../caps.js';
import { yieldIfDue } from '../concurrency.js';
import { AppError, errnoCode } from '../errors.js';
import { entryName, parseEntry, type IndexEntry } from './entry.js';
import { readEntryText } from './entry-file.js';
import { PendingSync } from './commit.js';
import { EntryWriter } from './entry-writer.js';
import { FreedFiles } from './freed.js';
import { HoldStore } from '../holds/store.js';
import { recordIndexFormat } from './format.js';
import { UnitWindows } from './windows.js';

const DAY_NAME = /^\d{4}-\d{2}-\d{2}$/;
const ENTRY_NAME = /^[0-9a-f]{64}$/;
const NAME_BATCH = 1024;
// Entries read between two looks at the clock (yieldIfDue): each is an open, a read and a close.
const SLICE_ENTRIES = 32;

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
  // Where forgotten entries and window records wait to be unlinked.
  readonly freed: FreedFiles;
  // VMs whose backups a repair lift left unlocked for a while (lift --vm --hold).
  readonly holds: HoldStore;
  readonly #counts = new Map<string, { mtimeNs: bigint; count: number }>();
  // Entries against maxIndexEntries, once the daemon counts them (countForCap); commands run by an admin (rebuild-index)
  // are never capped.
  readonly entries: CapGauge;
  #capped = false;
  readonly #writer: EntryWriter;
  readonly #pending: PendingSync;

  constructor(indexPath: string, remoteId: string, maxEntries = Number.MAX_SAFE_INTEGER) {
    this.folder = path.join(indexPath, remoteId);
    this.entries = new CapGauge(maxEntries);
    // Entries and window records written ahead of a lock reach the disk in one group commit.
    this.#pending = new PendingSync(this.folder);
    this.#writer = new EntryWriter(this, this.#pending);
    this.freed = new FreedFiles(indexPath, remoteId);
    this.windows = new UnitWindows(indexPath, remoteId, this.#pending, this.freed);
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

  // Whether new entries are refused at the cap (countForCap).
  get capped(): boolean {
    return this.#capped;
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
      const text = readEntryText(file);
      return text === undefined ? undefined : parseEntry(text);
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return undefined;
      throw error;
    }
  }

  // Writes the entry (index/entry-writer.ts); `keep`: a created entry's descriptor stays open for its completion, until
  // release().
  async write(entry: IndexEntry, keep = false): Promise<void> {
    await this.#writer.write(entry, keep);
  }

  release(): void {
    this.#writer.release();
  }

  // Every entry written since the last call reaches the disk, with its day folder (write-ahead: before the flag).
  async sync(): Promise<void> {
    await this.#writer.sync();
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
    for (let i = 0; i < names.length; i++) {
      if (i % SLICE_ENTRIES === 0) await yieldIfDue();
      const name = names[i]!;
      // Names are the index's own (64 hex digits): joined without path.join, which costs more than the read here.
      const text = readEntryText(`${dayFolder}/${name}`);
      if (text !== undefined) read.push({ day, name, entry: parseEntry(text), text });
    }
    return read;
  }

  // Forgets entries: each moved out of its bucket, unlinked later (index/freed.ts: an unlink can wait for the disk's
  // discard). No sync: a crash leaves entries the next lift forgets.
  async removeAll(entries: readonly { day: string; name: string }[]): Promise<void> {
    for (const { day, name } of entries) {
      const forgotten = await this.freed.forget(path.join(this.folder, day, name));
      if (forgotten && this.#capped) this.entries.set(Math.max(0, this.entries.count - 1));
    }
  }

  // Forgets a whole day bucket with one rename into .freed (a lift forgets every entry it listed there): `names`, the
  // entries forgotten. Whatever else the moved bucket holds (an entry written since the lift listed the bucket, a file
  // not ours) is put back into the bucket, made again, and made durable. Synchronous from the move to the last name put
  // back: nothing else in this process (a write, the daemon's reclaim) sees the bucket gone. False, having moved
  // nothing, where the bucket cannot be moved into .freed (another filesystem): forget it entry by entry then.
  async removeDay(day: string, names: ReadonlySet<string>): Promise<boolean> {
    await yieldIfDue();
    const bucket = path.join(this.folder, day);
    const moved = this.freed.move(bucket);
    if (moved === false) return false;
    this.#writer.forgetDay(day);
    if (moved === undefined) return true;
    let forgotten = 0;
    let putBack = false;
    for (const name of readdirSync(moved)) {
      if (names.has(name)) {
        forgotten++;
        continue;
      }
      if (!putBack) mkdirSync(bucket, { mode: 0o700, recursive: true });
      putBack = true;
      renameSync(path.join(moved, name), path.join(bucket, name));
    }
    if (this.#capped) this.entries.set(Math.max(0, this.entries.count - forgotten));
    if (putBack) {
      this.#pending.add([], [bucket, this.folder]);
      await this.#pending.flush();
    }
    return true;
  }

  async removeDayIfEmpty(day: string): Promise<boolean> {
    try {
      await rmdir(path.join(this.folder, day));
      this.#writer.forgetDay(day);
      return true;
    } catch (error) {
      if (errnoCode(error) === 'ENOTEMPTY' || errnoCode(error) === 'EEXIST' || errnoCode(error) === 'ENOENT')
        return false;
      throw error;
    }
  }
}
