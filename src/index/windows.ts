import { hash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import path from 'node:path';
import { syncFolder, writeFileAtomic } from '../atomic.js';
import { forEachLimited, TakeTurns, yieldIfDue } from '../concurrency.js';
import { errnoCode } from '../errors.js';
import type { Identity } from '../remote/identity.js';
import { commitGroup } from './commit.js';
import { versionOf } from './format.js';

// Records written before versions existed have none: they are version 1.
const WINDOW_VERSION = 1;
// Unlinks in flight at once when records are forgotten (the thread pool runs four).
const UNLINKS_AT_ONCE = 16;

export interface UnitWindow {
  // The end of the latest window this very unit was ever locked for.
  until: number;
  // Where it was last locked.
  path: string;
  // On a backup's json (or config and pool date folder): the moment the daemon first found the backup complete, its
  // window's start (protect/arrival.ts). A record without it (older releases, other units) says nothing of arrival.
  arrived?: number;
}

interface Staged {
  temporary: string;
  record: UnitWindow;
}

// When the daemon first watched the remote: <indexPath>/.windows/<remote>/since.json (not a record's hex name).
const SINCE_FILE = 'since.json';

// The folders above a unit are never immutable, so a locked unit can be moved and found again under a path, alias or
// json with an earlier date. Its window is kept here by identity (inode and birth time: the device number can change
// across reboots), so that no new path makes it expire earlier than the latest window it was locked for.
export class UnitWindows {
  readonly folder: string;
  // Records extended since the last commit(), by file: written to their temporary file, not yet renamed into place.
  readonly #staged = new Map<string, Staged>();
  // Records the commit running now makes durable: what read() answers until they are in place.
  readonly #committing = new Map<string, Staged>();
  // Names each temporary file apart: a record staged while an older one of the same unit commits has its own.
  #temporaries = 0;
  // Records renamed into place by a commit() that failed before the folder was synced.
  #folderUnsynced = false;
  // One commit at a time: a commit called while another runs returns once that one's records are on disk too.
  readonly #commits = new TakeTurns();

  // Beside the remotes' day buckets, not among them: <indexPath>/.windows/<remote>/.
  constructor(indexPath: string, remoteId: string) {
    this.folder = path.join(indexPath, '.windows', remoteId);
  }

  async read(identity: Identity): Promise<UnitWindow | undefined> {
    await yieldIfDue();
    const file = this.#file(identity);
    const staged = this.#staged.get(file) ?? this.#committing.get(file);
    if (staged !== undefined) return staged.record;
    try {
      // stat first: most units have no record, and a miss is cheaper than a thrown ENOENT (docs/performance.md).
      if (statSync(file, { throwIfNoEntry: false }) === undefined) return undefined;
      const value = JSON.parse(readFileSync(file, 'utf8')) as Partial<UnitWindow>;
      // A record of a newer format is kept as unreadable: it never shortens a window.
      if (versionOf(value) !== WINDOW_VERSION) throw new Error('a newer format');
      if (typeof value.until !== 'number' || typeof value.path !== 'string') return undefined;
      const window: UnitWindow = { until: value.until, path: value.path };
      if (typeof value.arrived === 'number') window.arrived = value.arrived;
      return window;
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return undefined;
      // A damaged record must not shorten a window: the caller keeps the unit locked until told otherwise.
      return { until: Number.POSITIVE_INFINITY, path: `(unreadable record ${file})` };
    }
  }

  // Records that `identity` is locked at `unitPath` until at least `until`; returns the window it had before. The path
  // recorded is the one whose window is the latest: a unit moved into another VM's folder and claimed there for less
  // keeps the path it was locked at (a repair lift of that other VM does not unlock it, lift/candidate.ts).
  // Staged: the record is written aside and takes effect at commit(), which the caller awaits before it reports the
  // unit locked (group commit: one durability step for a whole lock batch's records). `arrived`, on a backup's json or
  // date folder: recorded unless an earlier arrival is.
  async extend(identity: Identity, until: number, unitPath: string, arrived?: number): Promise<UnitWindow | undefined> {
    const before = await this.read(identity);
    const later = before === undefined || until > before.until;
    if (!later && (arrived === undefined || before.arrived !== undefined)) return before;
    const record: UnitWindow = later ? { until, path: unitPath } : { until: before.until, path: before.path };
    const first = before?.arrived ?? arrived;
    if (first !== undefined) record.arrived = first;
    if (!Number.isFinite(record.until)) return before;
    const file = this.#file(identity);
    const temporary = this.#staged.get(file)?.temporary ?? `${file}.${process.pid}.${++this.#temporaries}.tmp`;
    mkdirSync(this.folder, { recursive: true, mode: 0o700 });
    const fd = openSync(temporary, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify({ version: WINDOW_VERSION, ...record }));
    } finally {
      closeSync(fd);
    }
    this.#staged.set(file, { temporary, record });
    return before;
  }

  // Every staged record reaches the disk before this returns: first the temporary files' data, in one group, then their
  // renames and the folder. A power loss before the end leaves each record as it was (a temporary file is never read),
  // never shorter, and never an empty record. A commit carries every caller's staged records: on failure, those not
  // renamed into place are staged again, so that the next commit (another caller's, or the retry) makes them durable
  // or fails in turn. None is lost while its caller believes it durable; the failing caller reports its units pending.
  async commit(): Promise<void> {
    await this.#commits.run(() => this.#commitStaged());
  }

  async #commitStaged(): Promise<void> {
    for (const [file, staged] of this.#staged) this.#committing.set(file, staged);
    this.#staged.clear();
    if (this.#committing.size === 0 && !this.#folderUnsynced) return;
    try {
      await commitGroup(
        this.folder,
        [...this.#committing.values()].map(({ temporary }) => temporary),
        [],
      );
      if (this.#committing.size > 0) this.#folderUnsynced = true;
      // Each record on its own: one that cannot be put in place holds back no other.
      let failure: Error | undefined;
      for (const [file, { temporary }] of this.#committing) {
        try {
          renameSync(temporary, file);
          this.#committing.delete(file);
        } catch (error) {
          failure ??= error as Error;
        }
      }
      await syncFolder(this.folder);
      this.#folderUnsynced = false;
      if (failure !== undefined) throw failure;
    } finally {
      this.#restage();
    }
  }

  // What a failed commit did not put in place waits for the next one, unless a later record of the same unit was
  // staged meanwhile (read from this one, so never shorter): this one's temporary file then goes.
  #restage(): void {
    for (const [file, staged] of this.#committing) {
      const gone = statSync(staged.temporary, { throwIfNoEntry: false }) === undefined;
      if (!gone && !this.#staged.has(file)) this.#staged.set(file, staged);
      else rmSync(staged.temporary, { force: true });
    }
    this.#committing.clear();
  }

  // The moment the daemon first watched this remote, written at that first start (`first`). A damaged file says the
  // epoch: every backup created less than a window ago then counts as arriving (when in doubt, protect).
  async watchSince(now: number): Promise<{ since: number; first: boolean }> {
    const file = path.join(this.folder, SINCE_FILE);
    try {
      const value = JSON.parse(readFileSync(file, 'utf8')) as { since?: unknown };
      return { since: typeof value.since === 'number' ? value.since : 0, first: false };
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') return { since: 0, first: false };
    }
    mkdirSync(this.folder, { recursive: true, mode: 0o700 });
    await writeFileAtomic(file, `${JSON.stringify({ version: WINDOW_VERSION, since: now })}\n`, 0o600, {
      durable: true,
    });
    return { since: now, first: true };
  }

  // Most units have no record: a stat each finds those that do, whose unlinks go in flight together (each can wait for
  // the disk's discard, docs/performance.md).
  async forgetAll(identities: readonly Identity[]): Promise<void> {
    const files: string[] = [];
    for (const identity of identities) {
      await yieldIfDue();
      const file = this.#file(identity);
      if (statSync(file, { throwIfNoEntry: false }) !== undefined) files.push(file);
    }
    await forEachLimited(files, UNLINKS_AT_ONCE, async (file) => {
      try {
        await unlink(file);
      } catch (error) {
        if (errnoCode(error) !== 'ENOENT') throw error;
      }
    });
  }

  #file(identity: Identity): string {
    return path.join(this.folder, hash('sha256', `${identity.ino}:${identity.birthtimeNs ?? '0'}`, 'hex'));
  }
}
