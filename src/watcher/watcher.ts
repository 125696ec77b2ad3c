import { lstatSync, watch as watchFolder, type FSWatcher as FolderWatch } from 'node:fs';
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { CapGauge, type CapLevel } from '../caps.js';
import { errnoCode } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { classifyFolder } from '../remote/patterns.js';
import { withHeldRemote } from '../remote/held.js';
import type { RemoteRoot } from '../remote/root.js';
import { findLeafFolders, kindOfFolder } from '../remote/scan.js';
import { logCapCrossed, logWatchError } from './messages.js';
import { folderIdentityOf, LeafWatches, type Leaf, type WatchEvent } from './leaves.js';

export type { Leaf, WatchEvent } from './leaves.js';

// chokidar lists a newly added folder before its watch exists, so a sub-folder created in between is never reported.
// A structural folder that appears while running is therefore listed again by us after these delays.
const RELIST_DELAYS_MS = [250, 2_000, 10_000];
// The VM tree is listed again this long after a burst of its events ends: inotify drops events when its queue
// overflows (libuv reports nothing then), and a VM folder whose creation was lost would wait for the rescan.
const VM_TREE_RELIST_MS = 1_000;

export interface WatchLimits {
  // Folders given a watch of their own at most (maxWatchedFolders); the VM tree is always watched.
  maxWatchedFolders: number;
  // Named in the cap's messages: how late a backup in an unwatched folder may be locked.
  rescanEveryMs: number;
}

// Watches cost memory per folder, never per backup: chokidar for the structural folders, one fs.watch per leaf
// (leaves.ts), and a plain fs.watch for the VM tree, which chokidar would relist on every change (docs/performance.md).
// Events are hints: the start-up scan and periodic rescan make a missed one cost latency, never protection.
export class RemoteWatcher {
  readonly #remote: RemoteRoot;
  readonly #root: string;
  readonly #log: Logger;
  readonly #leaves: LeafWatches;
  readonly #onEvent: (event: WatchEvent) => void;
  readonly #vmTrees = new Map<string, { watch: FolderWatch; identity: string; relist: NodeJS.Timeout | undefined }>();
  #structure: FSWatcher | undefined;
  #ready = false;
  readonly #relistTimers = new Set<NodeJS.Timeout>();
  // Watches held against maxWatchedFolders: attacker-made folders must not exhaust inotify or memory.
  readonly watches: CapGauge;
  readonly #rescanEveryMs: number;
  // Schedule and pool folders handed to chokidar since start (a watch each), against the same cap.
  readonly #structural = new Set<string>();

  constructor(
    remote: RemoteRoot,
    log: Logger,
    onEvent: (event: WatchEvent) => void,
    limits: WatchLimits = { maxWatchedFolders: Number.MAX_SAFE_INTEGER, rescanEveryMs: 0 },
  ) {
    this.#remote = remote;
    this.#root = remote.root;
    this.#log = log;
    this.#rescanEveryMs = limits.rescanEveryMs;
    this.#onEvent = onEvent;
    this.watches = new CapGauge(limits.maxWatchedFolders);
    this.#leaves = new LeafWatches({
      watches: this.watches,
      log,
      onEvent,
      onCount: () => this.#countWatches(),
      onError: (err, where) => this.#watchError(err, where),
    });
    this.watches.listen((level, previous, count) => this.#capCrossed(level, previous, count));
  }

  async start(): Promise<void> {
    const structure = watch(this.#root, {
      depth: 0,
      followSymlinks: false,
      ignoreInitial: false,
      persistent: true,
      // Name-only: no stat for entries we would drop anyway.
      ignored: (candidate: string) => classifyFolder(this.#relative(candidate)) === undefined,
    });
    this.#structure = structure;
    structure.on('addDir', (dir: string) => this.#added(dir));
    structure.on('unlinkDir', (dir: string) => this.#removed(dir));
    // Not a folder where XO writes one: a link is reported at once (its look puts the folder back, or says why not).
    // (chokidar reports a folder replaced by a link as a change.)
    structure.on('add', (file: string) => this.#linkedIfLink(file));
    structure.on('change', (file: string) => this.#linkedIfLink(file));
    structure.on('error', (err: unknown) => this.#watchError(err as Error, this.#root));
    await new Promise<void>((resolve) => structure.once('ready', resolve));
    this.#ready = true;
  }

  // The periodic rescan hands over every leaf it found: one chokidar never reported (created while it listed a new
  // folder) gets its watch now, and one whose watch failed (ENOSPC) is tried again. So does the VM tree, also when it
  // was replaced by a new folder of the same name (the watch then follows the old one).
  adopt(leaves: readonly Leaf[]): void {
    if (this.#structure !== undefined) for (const leaf of leaves) this.#leaves.adopt(leaf);
    this.#countWatches();
    this.#checkVmTree(path.join(this.#root, 'xo-vm-backups'));
  }

  // Folders with an inotify watch of their own (leaves, VM trees, schedule and pool folders), for status against
  // fs.inotify.max_user_watches and for maxWatchedFolders.
  watchedFolders(): number {
    return this.#vmTrees.size + this.#leaves.watched + this.#structural.size;
  }

  async close(): Promise<void> {
    this.watches.listen(() => undefined);
    for (const timer of this.#relistTimers) clearTimeout(timer);
    this.#relistTimers.clear();
    this.#leaves.close();
    this.#structural.clear();
    for (const tree of this.#vmTrees.values()) {
      tree.watch.close();
      clearTimeout(tree.relist);
    }
    this.#vmTrees.clear();
    await this.#structure?.close();
    this.#structure = undefined;
  }

  #relative(candidate: string): string {
    return path.relative(this.#root, candidate).split(path.sep).join('/');
  }

  #added(dir: string): void {
    const role = classifyFolder(this.#relative(dir));
    this.#log.trace({ path: dir, role }, 'folder appeared');
    if (role === undefined) return;
    if (role.role === 'structure') {
      if (role.kind === 'root') return;
      if (role.kind === 'vmTree') {
        this.#watchVmTree(dir);
        return;
      }
      // At the cap it is not watched: the rescan lists it (findLeafFolders walks every structural folder).
      if (!this.#structural.has(dir) && !this.watches.reached) {
        this.#structure?.add(dir);
        this.#structural.add(dir);
        this.#countWatches();
      }
      // At start the daemon's own scan covers what chokidar may miss; later, this folder is new and may fill at once.
      if (this.#ready) this.#relistLater(dir);
      return;
    }
    this.#addLeaf({ kind: role.kind, path: dir });
  }

  #linkedIfLink(file: string): void {
    const role = classifyFolder(this.#relative(file));
    if (role === undefined || (role.role === 'structure' && role.kind === 'root')) return;
    lstat(file)
      .then((stats) => {
        if (stats.isSymbolicLink() && this.#structure !== undefined)
          this.#onEvent({ type: 'folder-linked', leaf: { kind: kindOfFolder(role), path: file } });
      })
      .catch((err: unknown) => {
        if (errnoCode(err) !== 'ENOENT') this.#log.warn({ err, path: file }, 'could not look at a changed folder');
      });
  }

  #relistLater(dir: string): void {
    for (const delay of RELIST_DELAYS_MS) {
      const timer = setTimeout(() => {
        this.#relistTimers.delete(timer);
        this.#listLeaves(dir, 'could not list a new folder');
      }, delay);
      timer.unref();
      this.#relistTimers.add(timer);
    }
  }

  #watchVmTree(dir: string): void {
    if (this.#vmTrees.has(dir) || this.#structure === undefined) return;
    let tree: FolderWatch;
    let identity: string;
    try {
      const stats = lstatSync(dir, { bigint: true });
      // Swapped for a link since it was listed: never watched through it (the rescan looks again).
      if (!stats.isDirectory()) return;
      identity = folderIdentityOf(stats);
      tree = watchFolder(dir, { persistent: true }, (_event, file) => {
        this.#relistVmTreeLater(dir);
        if (file === null) return;
        const name = String(file);
        // The tree's own rename or removal is reported under its own name.
        if (name === path.basename(dir)) this.#checkVmTree(dir);
        this.#vmTreeEntryChanged(path.join(dir, name));
      });
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return;
      this.#watchError(err as Error, dir);
      return;
    }
    tree.on('error', (err) => {
      this.#forgetVmTree(dir);
      if (errnoCode(err) !== 'ENOENT') this.#watchError(err, dir);
    });
    this.#vmTrees.set(dir, { watch: tree, identity, relist: undefined });
    this.#countWatches();
    // Listed once its watch exists: a VM folder created meanwhile is seen by the listing, the watch, or both. At start
    // the daemon's own scan lists it right after (adopt()), in the order the catch-up wants: not twice.
    if (this.#ready) this.#listLeaves(dir, 'could not list the VM backups folder; the periodic rescan will');
  }

  #relistVmTreeLater(dir: string): void {
    const watched = this.#vmTrees.get(dir);
    if (watched === undefined) return;
    clearTimeout(watched.relist);
    watched.relist = setTimeout(() => {
      watched.relist = undefined;
      if (this.#vmTrees.get(dir) === watched)
        this.#listLeaves(dir, 'could not list the VM backups folder; the periodic rescan will');
    }, VM_TREE_RELIST_MS);
    watched.relist.unref();
  }

  // Every leaf folder under a structural one gets its watch (and a first reconcile) if it has none yet.
  #listLeaves(dir: string, failure: string): void {
    withHeldRemote(this.#remote, (held) => findLeafFolders(held, this.#relative(dir)))
      .then((leaves) => {
        for (const leaf of leaves) this.#addLeaf(leaf);
      })
      .catch((err: unknown) => this.#log.warn({ err, path: dir }, failure));
  }

  // Created, renamed or removed: which one, only an lstat tells. A symlinked "VM folder" is no leaf, as in the scan.
  #vmTreeEntryChanged(entry: string): void {
    const role = classifyFolder(this.#relative(entry));
    if (role?.role !== 'leaf') return;
    lstat(entry)
      .then((stats) => {
        if (stats.isDirectory()) this.#addLeaf({ kind: role.kind, path: entry });
        else this.#removed(entry);
        if (stats.isSymbolicLink()) this.#onEvent({ type: 'folder-linked', leaf: { kind: role.kind, path: entry } });
      })
      .catch((err: unknown) => {
        const code = errnoCode(err);
        if (code === 'ENOENT' || code === 'ENOTDIR') this.#removed(entry);
        else this.#log.warn({ err, path: entry }, 'could not look at a changed VM folder; the periodic rescan will');
      });
  }

  #checkVmTree(dir: string): void {
    const watched = this.#vmTrees.get(dir);
    if (watched === undefined) {
      this.#watchVmTree(dir);
      return;
    }
    lstat(dir, { bigint: true }).then(
      (stats) => {
        if (folderIdentityOf(stats) === watched.identity || this.#vmTrees.get(dir) !== watched) return;
        this.#forgetVmTree(dir);
        if (stats.isDirectory()) this.#watchVmTree(dir);
      },
      (err: unknown) => {
        if (this.#vmTrees.get(dir) === watched && errnoCode(err) === 'ENOENT') this.#forgetVmTree(dir);
      },
    );
  }

  // The tree itself went (renamed, removed, unmounted), and its VM folders with it; chokidar reports its return.
  #forgetVmTree(dir: string): void {
    const watched = this.#vmTrees.get(dir);
    watched?.watch.close();
    clearTimeout(watched?.relist);
    this.#vmTrees.delete(dir);
    this.#countWatches();
    for (const leaf of this.#leaves.inside(dir)) this.#removed(leaf);
  }

  #addLeaf(leaf: Leaf): void {
    if (this.#structure !== undefined) this.#leaves.add(leaf);
  }

  #removed(dir: string): void {
    if (this.#vmTrees.has(dir)) this.#forgetVmTree(dir);
    // chokidar drops the watch of a folder that went (not unwatch(): it would ignore the name if made again).
    if (this.#structural.delete(dir)) this.#countWatches();
    this.#leaves.remove(dir);
  }

  #countWatches(): void {
    this.watches.set(this.watchedFolders());
  }

  #capCrossed(level: CapLevel, previous: CapLevel, count: number): void {
    logCapCrossed(this.#log, { level, previous, count, max: this.watches.max, rescanEveryMs: this.#rescanEveryMs });
  }

  #watchError(err: Error, where: string): void {
    logWatchError(this.#log, err, where, this.#leaves.known);
  }
}
