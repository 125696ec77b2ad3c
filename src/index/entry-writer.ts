import { closeSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import type { CapGauge } from '../caps.js';
import { yieldIfDue } from '../concurrency.js';
import { AppError, errnoCode } from '../errors.js';
import type { PendingSync } from './commit.js';
import { entryName, parseEntry, type IndexEntry } from './entry.js';
import { completeOpenEntry, readEntryText, writeEntryFile, type OpenEntry } from './entry-file.js';

// Descriptors kept open from create to completion at most, and at most this share of the process's soft limit on open
// files (systemd's default is 1,024 unless Node raised it): past either, a completion opens its entry again.
const KEPT_AT_MOST = 4096;
const SHARE_OF_FD_LIMIT = 4;

// What the writer needs of its store.
export interface WriterStore {
  readonly folder: string;
  readonly entries: CapGauge;
  readonly capped: boolean;
  listDays(): Promise<string[]>;
}

// Writes and syncs the entries of one remote's index, synchronously between slices (yieldIfDue).
export class EntryWriter {
  readonly #store: WriterStore;
  readonly #knownDays = new Set<string>();
  // Written and not durable yet: entry files, and the folders whose entries changed. Shared with the index's window
  // records (index/windows.ts), so that one group commit makes both durable.
  readonly #pending: PendingSync;
  // Entries created with `keep`, by path, until written again or released.
  readonly #kept = new Map<string, OpenEntry>();
  #keepAtMost: number | undefined;

  constructor(store: WriterStore, pending: PendingSync) {
    this.#store = store;
    this.#pending = pending;
  }

  forgetDay(day: string): void {
    this.#knownDays.delete(day);
  }

  // Created once with room to grow, rewritten in place padded to the old length: a create costs most
  // (docs/performance.md), and a rewrite never changes the size (ROOM_TO_GROW). `keep`: a created entry's descriptor
  // stays open for its completion (release() closes what is left).
  // A racing reader or a crash sees an unparsable entry, which every reader treats conservatively.
  async write(entry: IndexEntry, keep = false): Promise<void> {
    const dayFolder = path.join(this.#store.folder, entry.day);
    const target = path.join(dayFolder, entryName(entry.path));
    const text = `${JSON.stringify(entry)}\n`;
    await yieldIfDue();
    const kept = this.#kept.get(target);
    if (kept !== undefined) {
      this.#kept.delete(target);
      // The descriptor kept since its create: no second open.
      if (completeOpenEntry(kept, text) === 'rewritten') {
        this.#pending.add([target]);
        return;
      }
    }
    const { entries } = this.#store;
    for (let attempt = 1; ; attempt++) {
      const create = !(this.#store.capped && entries.reached);
      if (create && !this.#knownDays.has(entry.day)) {
        if (mkdirSync(dayFolder, { recursive: true, mode: 0o700 }) !== undefined)
          this.#pending.add([], [this.#store.folder]);
        this.#knownDays.add(entry.day);
      }
      let written;
      try {
        written = writeEntryFile(target, text, create, create && keep && this.#mayKeep());
      } catch (error) {
        if (!create && errnoCode(error) === 'ENOENT') {
          if (await this.#redate(entry, target)) return;
          throw this.#full(entry.path);
        }
        if (errnoCode(error) !== 'ENOENT' || attempt > 1) throw error;
        this.#knownDays.delete(entry.day);
        continue;
      }
      // Written into a file a lift in another process unlinked meanwhile: written again, into a new one.
      if (written.result !== 'unlinked') {
        this.#pending.add([target], written.result === 'created' ? [dayFolder] : []);
        if (written.result === 'created') entries.set(entries.count + 1);
        if (written.kept !== undefined) this.#kept.set(target, written.kept);
        return;
      }
      if (attempt > 2)
        throw Object.assign(new Error(`index entry ${target} was removed while being written, ${attempt} times`), {
          code: 'EAGAIN',
        });
    }
  }

  // Closes the descriptors kept for completions that did not come (a unit the helper could not lock).
  release(): void {
    for (const { fd } of this.#kept.values()) closeSync(fd);
    this.#kept.clear();
  }

  #mayKeep(): boolean {
    this.#keepAtMost ??= Math.min(KEPT_AT_MOST, Math.floor(openFilesLimit() / SHARE_OF_FD_LIMIT));
    return this.#kept.size < this.#keepAtMost;
  }

  // At the cap a unit already indexed is never refused a newer entry: its entry of an older bucket moves here (a
  // re-dating, not a new entry). Rewritten first, then renamed: a crash between leaves it in the old bucket saying
  // the newer date, which only keeps the unit locked longer.
  async #redate(entry: IndexEntry, target: string): Promise<boolean> {
    const name = entryName(entry.path);
    const instant = Date.parse(entry.backupDatetime);
    for (const day of await this.#store.listDays()) {
      if (day >= entry.day) break;
      const older = path.join(this.#store.folder, day, name);
      const text = readEntryText(older);
      const stored = text === undefined ? undefined : parseEntry(text);
      // Only an older entry of this very path moves; one saying a later date stays where it is.
      if (stored?.path !== entry.path || !(Date.parse(stored.backupDatetime) < instant)) continue;
      if (writeEntryFile(older, `${JSON.stringify(entry)}\n`, false, false).result === 'unlinked') continue;
      const dayFolder = path.dirname(target);
      if (mkdirSync(dayFolder, { recursive: true, mode: 0o700 }) !== undefined)
        this.#pending.add([], [this.#store.folder]);
      this.#knownDays.add(entry.day);
      renameSync(older, target);
      this.#pending.add([target], [dayFolder, path.dirname(older)]);
      return true;
    }
    return false;
  }

  #full(unitPath: string): AppError {
    return new AppError(
      'INDEX_FULL',
      `the index of ${path.basename(this.#store.folder)} holds ${this.#store.entries.count} entries, its cap ` +
        '(maxIndexEntries)',
      {
        value: unitPath,
        hint:
          'the unit is locked without an entry, and lift never unlocks it: remove the folders nobody made, or raise ' +
          'maxIndexEntries, then run `xo-immutable-backups rebuild-index`',
      },
    );
  }

  // Every entry written since the last call reaches the disk, with its day folder: the lock path calls it once per
  // batch, after the entries and before the flag (write-ahead), so a power loss never loses the entry of a locked unit.
  // One group commit for them all, and for the window records written ahead (index/commit.ts), not one fsync after the
  // other.
  async sync(): Promise<void> {
    await this.#pending.flush();
  }
}

// The soft limit on open files (Node raises it to the hard limit at start-up); 1,024 when it cannot be read.
function openFilesLimit(): number {
  try {
    const line = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (line?.[1] === 'unlimited') return Number.MAX_SAFE_INTEGER;
    return line === null ? 1024 : Number(line[1]);
  } catch {
    return 1024;
  }
}
