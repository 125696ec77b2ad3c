import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AppError, errnoCode } from '../errors.js';
import { entryName, parseEntry, type IndexEntry } from './entry.js';

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

  // Atomic: a reader sees the old entry or the new one, never half of one.
  async write(entry: IndexEntry): Promise<void> {
    const dayFolder = path.join(this.folder, entry.day);
    if (!this.#knownDays.has(entry.day)) {
      await mkdir(dayFolder, { recursive: true, mode: 0o700 });
      this.#knownDays.add(entry.day);
    }
    const target = path.join(dayFolder, entryName(entry.path));
    const temporary = `${target}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await writeFile(temporary, `${JSON.stringify(entry)}\n`, { mode: 0o600 });
      await rename(temporary, target);
    } catch (error) {
      await unlink(temporary).catch(() => undefined);
      if (errnoCode(error) === 'ENOENT') this.#knownDays.delete(entry.day);
      throw error;
    }
  }
}
