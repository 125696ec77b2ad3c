import { mkdirSync, readdirSync, renameSync, type Dirent } from 'node:fs';
import { rmdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { unlinkIfPresent } from '../atomic.js';
import { yieldIfDue } from '../concurrency.js';
import { errnoCode } from '../errors.js';

// Unlinks in one turn of the daemon's (in flight together: the thread pool runs four).
const RECLAIM_TURN = 16;

// Names told apart from a crashed run's leftovers (pid and start time) and from one forget to the next, across every
// store of this process.
const PREFIX = `${process.pid}.${Date.now().toString(36)}.`;
let moved = 0;

// What the index forgets (lifted entries, their window records) is moved here, then unlinked later, a few at a time.
// Unlinking a file that has data frees a block, and where the filesystem is mounted with `discard` each such unlink
// waits for the disk (0.2 to 4 ms on this machine's /tmp, docs/performance.md): 30,000 of them made a lift wait about
// 40 s. A rename frees nothing. Nothing reads this folder: a file here is forgotten whether or not it is unlinked yet.
// <indexPath>/.freed/<remote>/, beside the remote's day buckets, not among them.
export class FreedFiles {
  readonly folder: string;
  #made = false;

  constructor(indexPath: string, remoteId: string) {
    this.folder = path.join(indexPath, '.freed', remoteId);
  }

  // Moves a file out of use; false when it was gone already. Synchronous, between yieldIfDue slices: a rename is
  // about 10 us. Where it cannot be renamed here (another filesystem), it is unlinked instead.
  async forget(file: string): Promise<boolean> {
    await yieldIfDue();
    const to = this.move(file);
    if (to !== false) return to !== undefined;
    return unlinkIfPresent(file);
  }

  // Moves a file, or a whole folder (a day bucket: IndexStore.removeDay), here with one rename: where it is now,
  // undefined when it was gone already, false where it cannot be renamed here (another filesystem).
  move(from: string): string | undefined | false {
    for (let attempt = 0; attempt < 2; attempt++) {
      this.#make(attempt > 0);
      const to = path.join(this.folder, `${PREFIX}${(moved++).toString(36)}`);
      try {
        renameSync(from, to);
        return to;
      } catch (error) {
        // ENOENT is the file gone, or this folder removed meanwhile: made again once, to tell which.
        if (errnoCode(error) === 'ENOENT' && attempt === 0) continue;
        if (errnoCode(error) === 'ENOENT') return undefined;
        if (errnoCode(error) === 'EXDEV') return false;
        throw error;
      }
    }
    return undefined;
  }

  // Unlinks the files moved here (by this process or an earlier one), RECLAIM_TURN at a time, each turn run through
  // `turn` (the daemon's: lock batches go between two turns), until they are all gone or `stopped()`; then the same in
  // each folder moved here (a forgotten day bucket, or what a stopped or crashed reclaim left of one), and the folder.
  // Returns how many files it unlinked. Off the main thread: each unlink may wait for the disk.
  async reclaim(turn: (work: () => Promise<void>) => Promise<void>, stopped: () => boolean): Promise<number> {
    const found = listed(this.folder);
    const folders = found.filter((entry) => entry.isDirectory()).map((entry) => path.join(this.folder, entry.name));
    const files = found.filter((entry) => !entry.isDirectory()).map((entry) => entry.name);
    let done = await unlinkIn(this.folder, files, turn, stopped);
    for (const folder of folders) {
      if (stopped()) break;
      done += await unlinkIn(
        folder,
        listed(folder).map((entry) => entry.name),
        turn,
        stopped,
      );
      if (!stopped()) await turn(() => rmdir(folder).catch(ignoreGone));
    }
    return done;
  }

  // Removes the folder once empty (a remote no longer configured); false when something is still there.
  async removeIfEmpty(): Promise<boolean> {
    try {
      await rmdir(this.folder);
    } catch (error) {
      if (errnoCode(error) === 'ENOTEMPTY' || errnoCode(error) === 'EEXIST') return false;
      if (errnoCode(error) !== 'ENOENT') throw error;
    }
    this.#made = false;
    return true;
  }

  #make(again: boolean): void {
    if (this.#made && !again) return;
    mkdirSync(this.folder, { recursive: true, mode: 0o700 });
    this.#made = true;
  }
}

// The remotes with a folder in <indexPath>/.freed/, configured or not: nothing reads those folders, so whatever is in
// any of them can be unlinked.
export function freedRemotes(indexPath: string): string[] {
  return listed(path.join(indexPath, '.freed'))
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name);
}

// What a folder holds; nothing when it is gone.
function listed(folder: string): Dirent[] {
  try {
    return readdirSync(folder, { withFileTypes: true });
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return [];
    throw error;
  }
}

async function unlinkIn(
  folder: string,
  names: readonly string[],
  turn: (work: () => Promise<void>) => Promise<void>,
  stopped: () => boolean,
): Promise<number> {
  let done = 0;
  for (let start = 0; start < names.length && !stopped(); start += RECLAIM_TURN) {
    const some = names.slice(start, start + RECLAIM_TURN);
    await turn(async () => {
      await Promise.all(some.map((name) => unlink(path.join(folder, name)).catch(ignoreGone)));
    });
    done += some.length;
  }
  return done;
}

function ignoreGone(error: unknown): void {
  if (errnoCode(error) !== 'ENOENT') throw error;
}
