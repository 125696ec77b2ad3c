import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { syncFolder, writeFileAtomic } from '../atomic.js';
import { forEachLimited, TakeTurns, yieldIfDue } from '../concurrency.js';
import { errnoCode } from '../errors.js';
import type { Identity } from '../remote/identity.js';
import { commitGroup, PendingSync } from './commit.js';
import { versionOf } from './format.js';
import { FreedFiles } from './freed.js';
import { removeLeftoverTemporaries, temporaryOf } from './temporaries.js';
import { extended, nameOf, type UnitWindow } from './window-record.js';

export type { UnitWindow } from './window-record.js';

// Records written before versions existed have none: they are version 1.
const WINDOW_VERSION = 1;
// Writes, renames and unlinks in flight at once (the thread pool runs four): a commit's records are created together,
// off the main thread, instead of one synchronous open each (docs/dev/performance-history.md, "Window records").
const AT_ONCE = 16;
// A record's name: the hex sha256 of its identity. Anything else in the folder (since.json, temporary files) is not one.
const RECORD_NAME = /^[0-9a-f]{64}$/;
// A record read as no record at all: empty, or zeros where its data never reached the disk (writeAhead).
const TORN = /^\0*$/;

// A window to record for a unit about to be locked, by the identity its reconcile examined (writeAhead).
export type WindowAhead = UnitWindow & { identity: Identity };

// When the daemon first watched the remote: <indexPath>/.windows/<remote>/since.json (not a record's hex name).
const SINCE_FILE = 'since.json';

// The folders above a unit are never immutable, so a locked unit can be moved and found again under a path, alias or
// json with an earlier date. Its window is kept here by identity (inode and birth time: the device number can change
// across reboots), so that no new path makes it expire earlier than the latest window it was locked for.
//
// Which records exist is listed once, at the first use, then kept up to date by this store's own commits and forgets:
// most units have none, and a unit without one costs no stat. That holds because one process at a time writes the
// index (lock/instance-lock.ts): the daemon, or a command run while none does, each with its own store. A command
// that runs beside a daemon (`hold start`, which unlocks, and `lift --dry-run`) calls besideWriter(): a name not listed is looked up on
// disk, so that a record the daemon commits after the listing is still seen. A name listed whose file is gone
// meanwhile reads as no record.
export class UnitWindows {
  readonly folder: string;
  readonly #freed: FreedFiles;
  // Records extended since the last commit(), by name: in memory only until a commit writes them.
  readonly #staged = new Map<string, UnitWindow>();
  // Records the commit running now makes durable: what read() answers until they are in place.
  readonly #committing = new Map<string, UnitWindow>();
  // Records created in place by writeAhead(), by name, until a commit() knows them durable: what read() answers.
  readonly #ahead = new Map<string, { record: UnitWindow; file: string }>();
  // Where writeAhead() leaves what it created for the index's next group commit (shared with its entries).
  readonly #pending: PendingSync;
  // The names of the records on disk (undefined: not listed yet).
  #recorded: Set<string> | undefined;
  // Names each temporary file apart, also from another process's (the pid) and from a crashed run's leftovers.
  #temporaries = 0;
  // Set by besideWriter(): another process may add records after the listing, so a miss is looked up on disk.
  #missesOnDisk = false;
  // Records renamed into place by a commit() that failed before the folder was synced.
  #folderUnsynced = false;
  // One commit at a time: a commit called while another runs returns once that one's records are on disk too.
  readonly #commits = new TakeTurns();
  // Set once a commit removed the temporary files crashed commits of other processes left (index/temporaries.ts).
  #leftoversRemoved = false;

  // Beside the remotes' day buckets, not among them: <indexPath>/.windows/<remote>/.
  constructor(indexPath: string, remoteId: string, pending?: PendingSync, freed = new FreedFiles(indexPath, remoteId)) {
    this.folder = path.join(indexPath, '.windows', remoteId);
    this.#pending = pending ?? new PendingSync(this.folder);
    this.#freed = freed;
  }

  // For a process that reads while the daemon writes (see above): a stat a unit without a record, as before the
  // listing existed.
  besideWriter(): void {
    this.#missesOnDisk = true;
  }

  async read(identity: Identity): Promise<UnitWindow | undefined> {
    await yieldIfDue();
    return this.#read(nameOf(identity));
  }

  // The same without a turn of the event loop, for a caller that yields between its own slices (a lift's examine).
  readNow(identity: Identity): UnitWindow | undefined {
    return this.#read(nameOf(identity));
  }

  #read(name: string): UnitWindow | undefined {
    const staged = this.#staged.get(name) ?? this.#committing.get(name) ?? this.#ahead.get(name)?.record;
    if (staged !== undefined) return staged;
    const file = path.join(this.folder, name);
    try {
      if (!this.#listed().has(name)) {
        if (!this.#missesOnDisk || statSync(file, { throwIfNoEntry: false }) === undefined) return undefined;
        this.#recorded?.add(name);
      }
      const text = readFileSync(file, 'utf8');
      // Created in place by writeAhead() and cut by a power loss before the group commit that precedes the flag: its
      // unit was not locked for it, and no record was there before it (what this read answers).
      if (TORN.test(text)) return undefined;
      const value = JSON.parse(text) as Partial<UnitWindow>;
      // A record of a newer format is kept as unreadable: it never shortens a window.
      if (versionOf(value) !== WINDOW_VERSION) throw new Error('a newer format');
      if (typeof value.until !== 'number' || typeof value.path !== 'string') return undefined;
      const window: UnitWindow = { until: value.until, path: value.path };
      if (typeof value.arrived === 'number') window.arrived = value.arrived;
      return window;
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') {
        this.#recorded?.delete(name);
        return undefined;
      }
      // A damaged record must not shorten a window: the caller keeps the unit locked until told otherwise.
      return { until: Number.POSITIVE_INFINITY, path: `(unreadable record ${file})` };
    }
  }

  // Records that `identity` is locked at `unitPath` until at least `until`; returns the window it had before. The path
  // recorded is the one whose window is the latest: a unit moved into another VM's folder and claimed there for less
  // keeps the path it was locked at (a repair lift of that other VM does not unlock it, lift/candidate.ts).
  // Staged: the record is kept in memory and written at commit(), which the caller awaits before it reports the unit
  // locked (group commit: one durability step for a whole lock batch's records). `arrived`, on a backup's json or date
  // folder: recorded unless an earlier arrival is.
  async extend(identity: Identity, until: number, unitPath: string, arrived?: number): Promise<UnitWindow | undefined> {
    await yieldIfDue();
    const name = nameOf(identity);
    const before = this.#read(name);
    const record = extended(before, until, unitPath, arrived);
    if (record !== undefined) this.#staged.set(name, record);
    return before;
  }

  // Write-ahead of the windows of units about to be locked, by the identity their reconcile examined: a record no unit
  // has yet (a json's arrival, the common case) is created in place (O_EXCL) and left to the index's next group
  // commit, the one its entries take before the flag is set; extend() after the lock, by the identity the flag helper
  // locked, finds it and stages nothing, so the completion waits for no disk round trip of its own. A record that
  // exists is extended at commit() as before: rewritten in place, a power loss could tear it. A record written ahead
  // for an inode the helper then did not lock is removed (withdrawAhead, given the names this returns).
  async writeAhead(windows: readonly WindowAhead[]): Promise<string[]> {
    const created = new Map<string, UnitWindow>();
    for (const { identity, until, path: unitPath, arrived } of windows) {
      await yieldIfDue();
      const name = nameOf(identity);
      const before = created.get(name) ?? this.#read(name);
      if (before !== undefined && !created.has(name)) continue;
      const record = extended(before, until, unitPath, arrived);
      if (record !== undefined) created.set(name, record);
    }
    const written: string[] = [];
    if (created.size === 0) return written;
    // A folder created here is durable with the records in it (its parent holds its name).
    const made = await mkdir(this.folder, { recursive: true, mode: 0o700 });
    const folders = made === undefined ? [this.folder] : [this.folder, path.dirname(this.folder), path.dirname(made)];
    await forEachLimited([...created], AT_ONCE, async ([name, record]) => {
      const file = path.join(this.folder, name);
      // There already (a record a power loss cut, another process's) or not written whole: extend() after the lock
      // takes it, and a commit renames a whole record over it.
      this.#recorded?.add(name);
      try {
        await writeFile(file, JSON.stringify({ version: WINDOW_VERSION, ...record }), { flag: 'wx', mode: 0o600 });
      } catch (error) {
        if (errnoCode(error) !== 'EEXIST') await rm(file, { force: true });
        return;
      }
      // Waiting for a group commit before anyone can take it for durable (commit() below).
      this.#pending.add([file], folders);
      this.#ahead.set(name, { record, file });
      written.push(name);
    });
    return written;
  }

  // Removes the records writeAhead() created (`written`: nothing was there before them) whose inode the batch did not
  // lock (swapped, deleted, refused): without birth times a file taking that inode number would inherit them.
  async withdrawAhead(written: readonly string[], locked: readonly Identity[]): Promise<void> {
    const keep = new Set(locked.map(nameOf));
    await forEachLimited(written, AT_ONCE, async (name) => {
      const ahead = this.#ahead.get(name);
      if (keep.has(name) || ahead === undefined) return;
      await rm(ahead.file, { force: true });
      this.#ahead.delete(name);
      this.#recorded?.delete(name);
    });
  }

  // Every staged record reaches the disk before this returns: each written to a temporary file (all in flight), their
  // data synced in one group, then renamed into place and the folder synced. A power loss before the end leaves each
  // record as it was (a temporary file is never read), never shorter, and never an empty record. A commit carries
  // every caller's staged records: on failure, those not renamed into place are staged again, so that the next commit
  // (another caller's, or the retry) makes them durable or fails in turn. None is lost while its caller believes it
  // durable; the failing caller reports its units pending.
  async commit(): Promise<void> {
    await this.#commits.run(() => this.#commitStaged());
  }

  async #commitStaged(): Promise<void> {
    // Only the index's writer commits (a store beside it never does); a sweep that failed is tried at the next.
    if (!this.#leftoversRemoved && !this.#missesOnDisk)
      this.#leftoversRemoved = await removeLeftoverTemporaries(this.folder, AT_ONCE).then(
        () => true,
        () => false,
      );
    // The records written ahead: durable by the write-ahead's group commit, or by this one if that one failed.
    const ahead = [...this.#ahead];
    if (ahead.length > 0) {
      await this.#pending.ensure(ahead.map(([, { file }]) => file));
      for (const [name, written] of ahead) if (this.#ahead.get(name) === written) this.#ahead.delete(name);
    }
    for (const [name, record] of this.#staged) this.#committing.set(name, record);
    this.#staged.clear();
    if (this.#committing.size === 0 && !this.#folderUnsynced) return;
    // The temporary file of each record written (or being written), until it is renamed into place.
    const temporaries = new Map<string, string>();
    try {
      const records = [...this.#committing];
      if (records.length > 0) await mkdir(this.folder, { recursive: true, mode: 0o700 });
      await forEachLimited(records, AT_ONCE, async ([name, record]) => {
        const temporary = temporaryOf(this.folder, name, ++this.#temporaries);
        temporaries.set(name, temporary);
        await writeFile(temporary, JSON.stringify({ version: WINDOW_VERSION, ...record }), { mode: 0o600 });
      });
      await commitGroup(this.folder, [...temporaries.values()], []);
      if (records.length > 0) this.#folderUnsynced = true;
      // Each record on its own: one that cannot be put in place holds back no other.
      let failure: Error | undefined;
      await forEachLimited(records, AT_ONCE, async ([name]) => {
        try {
          await rename(temporaries.get(name)!, path.join(this.folder, name));
          temporaries.delete(name);
          this.#committing.delete(name);
          // Not listed yet: the listing will find it.
          this.#recorded?.add(name);
        } catch (error) {
          failure ??= error as Error;
        }
      });
      await syncFolder(this.folder);
      this.#folderUnsynced = false;
      if (failure !== undefined) throw failure;
    } finally {
      await forEachLimited([...temporaries.values()], AT_ONCE, (temporary) => rm(temporary, { force: true }));
      this.#restage();
    }
  }

  // What a failed commit did not put in place waits for the next one, unless a later record of the same unit was
  // staged meanwhile (read from this one, so never shorter).
  #restage(): void {
    for (const [name, record] of this.#committing) if (!this.#staged.has(name)) this.#staged.set(name, record);
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
    await mkdir(this.folder, { recursive: true, mode: 0o700 });
    await writeFileAtomic(file, `${JSON.stringify({ version: WINDOW_VERSION, since: now })}\n`, 0o600, {
      durable: true,
    });
    return { since: now, first: true };
  }

  // Only the units with a record cost anything; each is moved out, unlinked later (index/freed.ts).
  async forgetAll(identities: readonly Identity[]): Promise<void> {
    const recorded = this.#listed();
    const names = identities.map(nameOf).filter((name) => recorded.has(name));
    for (const name of names) {
      await this.#freed.forget(path.join(this.folder, name));
      recorded.delete(name);
      this.#ahead.delete(name);
    }
  }

  // One listing, at the first use (a missing folder: no record yet). An unreadable folder is not taken as empty: it
  // throws, a read then answers an unreadable record (an infinite window), and it is listed again at the next use.
  #listed(): Set<string> {
    if (this.#recorded !== undefined) return this.#recorded;
    let names: string[];
    try {
      names = readdirSync(this.folder);
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw error;
      names = [];
    }
    this.#recorded = new Set(names.filter((name) => RECORD_NAME.test(name)));
    return this.#recorded;
  }
}
