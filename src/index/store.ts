import { chmod, mkdir, readdir, readFile, rmdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../atomic.js';
import { AppError, errnoCode } from '../errors.js';
import { entryName, parseEntry, type IndexEntry } from './entry.js';

const DAY_NAME = /^\d{4}-\d{2}-\d{2}$/;
const ENTRY_NAME = /^[0-9a-f]{64}$/;

// One file of a day bucket as found on disk. `entry` is undefined when the file is not one of our entries
// (the prior art's bare-path entries, or a damaged file): `text` then holds what it says.
export interface StoredEntry {
  day: string;
  name: string;
  entry: IndexEntry | undefined;
  text: string;
}

// The day-bucketed index of one remote: <indexPath>/<remoteId>/<YYYY-MM-DD>/<sha256(path)>, one JSON file per unit.
export class IndexStore {
  readonly folder: string;
  readonly #knownDays = new Set<string>();

  constructor(indexPath: string, remoteId: string) {
    this.folder = path.join(indexPath, remoteId);
  }

  // Only root reads the index: it maps every protected path, which is worth nothing to an attacker but nothing to share either.
  async open(): Promise<void> {
    try {
      await mkdir(path.dirname(this.folder), { recursive: true, mode: 0o700 });
      await mkdir(this.folder, { recursive: true, mode: 0o700 });
      await chmod(this.folder, 0o700);
    } catch (error) {
      throw new AppError('INDEX_UNUSABLE', `Cannot create the index folder ${this.folder}: ${(error as Error).message}`, {
        value: this.folder,
        hint: 'check indexPath in the config; the folder must be writable by root and on a writable filesystem (systemd: ReadWritePaths)',
        cause: error,
      });
    }
  }

  entryPath(day: string, unitPath: string): string {
    return path.join(this.folder, day, entryName(unitPath));
  }

  async read(day: string, unitPath: string): Promise<IndexEntry | undefined> {
    try {
      return parseEntry(await readFile(this.entryPath(day, unitPath), 'utf8'));
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return undefined;
      throw error;
    }
  }

  // Atomic: a reader sees the old entry or the new one, never half of one. A day folder removed meanwhile (by a lift
  // in another process) is created again.
  async write(entry: IndexEntry): Promise<void> {
    const dayFolder = path.join(this.folder, entry.day);
    const target = path.join(dayFolder, entryName(entry.path));
    for (let attempt = 1; ; attempt++) {
      if (!this.#knownDays.has(entry.day)) {
        await mkdir(dayFolder, { recursive: true, mode: 0o700 });
        this.#knownDays.add(entry.day);
      }
      try {
        await writeFileAtomic(target, `${JSON.stringify(entry)}\n`, 0o600);
        return;
      } catch (error) {
        if (errnoCode(error) !== 'ENOENT' || attempt > 1) throw error;
        this.#knownDays.delete(entry.day);
      }
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

  async readDay(day: string): Promise<StoredEntry[]> {
    const dayFolder = path.join(this.folder, day);
    let names: string[];
    try {
      names = (await readdir(dayFolder)).filter((n) => ENTRY_NAME.test(n));
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return [];
      throw error;
    }
    const stored: StoredEntry[] = [];
    for (const name of names) {
      try {
        const text = await readFile(path.join(dayFolder, name), 'utf8');
        stored.push({ day, name, entry: parseEntry(text), text });
      } catch (error) {
        if (errnoCode(error) !== 'ENOENT') throw error;
      }
    }
    return stored;
  }

  // Forgets one entry; the day bucket goes too once it is empty.
  async remove(day: string, name: string): Promise<void> {
    try {
      await unlink(path.join(this.folder, day, name));
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw error;
    }
  }

  async removeDayIfEmpty(day: string): Promise<boolean> {
    try {
      await rmdir(path.join(this.folder, day));
      this.#knownDays.delete(day);
      return true;
    } catch (error) {
      if (errnoCode(error) === 'ENOTEMPTY' || errnoCode(error) === 'EEXIST' || errnoCode(error) === 'ENOENT') return false;
      throw error;
    }
  }
}
