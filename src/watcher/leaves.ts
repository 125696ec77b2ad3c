import { lstatSync, watch as watchFolder, type BigIntStats, type FSWatcher as FolderWatch } from 'node:fs';
import path from 'node:path';
import type { CapGauge } from '../caps.js';
import { errnoCode } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { isCompletionSignal, type BackupKind } from '../remote/patterns.js';

export interface Leaf {
  kind: BackupKind;
  path: string;
}

export type WatchEvent =
  | { type: 'leaf-added'; leaf: Leaf }
  | { type: 'leaf-changed'; leaf: Leaf; file: string | undefined }
  | { type: 'leaf-removed'; path: string }
  // A symbolic link where XO writes a folder (a leaf or a structural one), with the kind of backups behind it.
  | { type: 'folder-linked'; leaf: Leaf };

export interface LeafWatchOptions {
  // The cap shared with the structural watches (maxWatchedFolders): at it, a new leaf is known but not watched.
  watches: CapGauge;
  log: Logger;
  onEvent: (event: WatchEvent) => void;
  // The number of watches changed: the owner recounts them against the cap.
  onCount: () => void;
  onError: (err: Error, where: string) => void;
}

interface WatchedLeaf {
  leaf: Leaf;
  watch: FolderWatch | undefined;
  // The folder's identity when first seen, and its rank (lower: seen earlier).
  identity: string | undefined;
  rank: number;
}

// One plain fs.watch per leaf folder (a VM folder, a config or pool date folder): a backup's json appearing in it is
// the event. Costs memory per folder, never per backup (docs/performance.md).
export class LeafWatches {
  readonly #options: LeafWatchOptions;
  readonly #leaves = new Map<string, WatchedLeaf>();
  // Folders that had a watch and lost their name (renamed to a dot name, moved away), by identity, with their rank:
  // one that regains its name takes its watch back from a folder watched after it (watch-cap theft, docs/security.md).
  readonly #parked = new Map<string, number>();
  // The rank of the next folder seen: at the cap, the folders seen first keep their watches.
  #nextRank = 0;
  // Leaves whose watch is open: counted as they change, never by walking every leaf.
  #open = 0;

  constructor(options: LeafWatchOptions) {
    this.#options = options;
  }

  // Leaves with a watch open.
  get watched(): number {
    return this.#open;
  }

  // Leaves known, watched or not.
  get known(): number {
    return this.#leaves.size;
  }

  // A leaf found by a listing: known ones are left alone, except that one whose watch failed (ENOSPC) or was left
  // unwatched at the cap is tried again.
  adopt(leaf: Leaf): void {
    const known = this.#leaves.get(leaf.path);
    if (known === undefined) this.add(leaf);
    else if (known.watch === undefined) known.watch = this.#watch(known.leaf);
  }

  add(leaf: Leaf): void {
    const dir = leaf.path;
    if (this.#leaves.has(dir)) return;
    const identity = folderIdentity(dir);
    const parked = identity === undefined ? undefined : this.#parked.get(identity);
    if (identity !== undefined) this.#parked.delete(identity);
    const rank = parked ?? this.#nextRank++;
    if (parked !== undefined && this.#options.watches.reached) this.#takeWatchBack(dir, rank);
    this.#leaves.set(dir, { leaf, watch: this.#watch(leaf), identity, rank });
    this.#options.onCount();
    this.#options.onEvent({ type: 'leaf-added', leaf });
  }

  remove(dir: string): void {
    const known = this.#leaves.get(dir);
    if (known === undefined) return;
    if (known.watch !== undefined) {
      known.watch.close();
      this.#open--;
      if (known.identity !== undefined) this.#park(known.identity, known.rank);
    }
    this.#leaves.delete(dir);
    this.#options.onCount();
    this.#options.onEvent({ type: 'leaf-removed', path: dir });
  }

  // The leaves directly inside `dir` (a VM tree that went).
  inside(dir: string): string[] {
    return [...this.#leaves.keys()].filter((leaf) => path.dirname(leaf) === dir);
  }

  close(): void {
    for (const { watch } of this.#leaves.values()) watch?.close();
    this.#leaves.clear();
    this.#open = 0;
  }

  // A folder that had a watch is back under a leaf name while the cap is reached: the folder watched most recently
  // after it gives its watch up (it is reconciled at every rescan still), so renaming a real folder away and back
  // cannot hand its slot to junk.
  #takeWatchBack(dir: string, rank: number): void {
    let youngest: [string, WatchedLeaf] | undefined;
    for (const known of this.#leaves)
      if (known[1].watch !== undefined && known[1].rank > rank && known[1].rank > (youngest?.[1].rank ?? -1))
        youngest = known;
    if (youngest === undefined) return;
    const [taken, watched] = youngest;
    watched.watch?.close();
    watched.watch = undefined;
    this.#open--;
    this.#options.onCount();
    this.#options.log.warn(
      { path: dir, unwatched: taken, cap: 'maxWatchedFolders', security: true },
      `${dir} had a watch before it lost its name: it takes the watch of ${taken}, watched after it, back ` +
        '(maxWatchedFolders reached; someone renaming folders to take their watches?)',
    );
  }

  // Bounded like the watches: the oldest record goes first.
  #park(identity: string, rank: number): void {
    this.#parked.delete(identity);
    this.#parked.set(identity, rank);
    if (this.#parked.size > this.#options.watches.max) this.#parked.delete(this.#parked.keys().next().value!);
  }

  #watch(leaf: Leaf): FolderWatch | undefined {
    // At the cap the folder is still reconciled now and at every rescan, only not watched (docs/security.md).
    if (this.#options.watches.reached) return undefined;
    try {
      const folderWatch = watchFolder(leaf.path, { persistent: true }, (_event, file) => {
        const name = file === null ? undefined : String(file);
        if (name !== undefined && !isCompletionSignal(leaf.kind, name)) return;
        this.#options.onEvent({ type: 'leaf-changed', leaf, file: name });
      });
      folderWatch.on('error', (err) => {
        folderWatch.close();
        const known = this.#leaves.get(leaf.path);
        if (known?.watch === folderWatch) {
          known.watch = undefined;
          this.#open--;
          this.#options.onCount();
        }
        if (errnoCode(err) !== 'ENOENT') this.#options.onError(err, leaf.path);
      });
      this.#open++;
      this.#options.onCount();
      return folderWatch;
    } catch (err) {
      this.#options.onError(err as Error, leaf.path);
      return undefined;
    }
  }
}

// A folder removed and made again can get the same inode number back: its birth time tells them apart.
export function folderIdentityOf(stats: BigIntStats): string {
  return `${stats.dev}:${stats.ino}:${stats.birthtimeNs}`;
}

// Undefined when it is gone already (or is no folder).
function folderIdentity(dir: string): string | undefined {
  try {
    const stats = lstatSync(dir, { bigint: true });
    return stats.isDirectory() ? folderIdentityOf(stats) : undefined;
  } catch {
    return undefined;
  }
}
