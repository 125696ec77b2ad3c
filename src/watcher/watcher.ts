import { watch as watchFolder, type FSWatcher as FolderWatch } from 'node:fs';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { errnoCode } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { classifyFolder, isCompletionSignal, type BackupKind } from '../remote/patterns.js';
import { findLeafFolders } from '../remote/scan.js';

// chokidar lists a newly added folder before its watch exists, so a sub-folder created in between is never reported.
// A structural folder that appears while running is therefore listed again by us after these delays.
const RELIST_DELAYS_MS = [250, 2_000, 10_000];

export interface Leaf {
  kind: BackupKind;
  path: string;
}

export type WatchEvent =
  | { type: 'leaf-added'; leaf: Leaf }
  | { type: 'leaf-changed'; leaf: Leaf; file: string | undefined }
  | { type: 'leaf-removed'; path: string };

// Watching is what costs memory, so it is kept proportional to folders, never to retained backups:
// chokidar follows the few structural folders (depth 0: it reports their sub-folders without entering them), and each leaf
// folder (VM folder, config or pool date folder) gets one plain fs.watch, whose events only say "look at this folder".
// Events are hints: the daemon's start-up scan and periodic rescan make a missed one cost latency, never protection.
export class RemoteWatcher {
  readonly #root: string;
  readonly #log: Logger;
  readonly #onEvent: (event: WatchEvent) => void;
  readonly #leaves = new Map<string, { leaf: Leaf; watch: FolderWatch | undefined }>();
  #structure: FSWatcher | undefined;
  #ready = false;
  readonly #relistTimers = new Set<NodeJS.Timeout>();

  constructor(root: string, log: Logger, onEvent: (event: WatchEvent) => void) {
    this.#root = root;
    this.#log = log;
    this.#onEvent = onEvent;
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
    structure.on('error', (err: unknown) => this.#watchError(err as Error, this.#root));
    await new Promise<void>((resolve) => structure.once('ready', resolve));
    this.#ready = true;
  }

  // The periodic rescan hands over every leaf it found: one chokidar never reported (created while it listed a new
  // folder) gets its watch now, and one whose watch failed (ENOSPC) is tried again.
  adopt(leaves: readonly Leaf[]): void {
    for (const leaf of leaves) {
      const known = this.#leaves.get(leaf.path);
      if (known === undefined) this.#addLeaf(leaf);
      else if (known.watch === undefined) known.watch = this.#watchLeaf(known.leaf);
    }
  }

  // Folders with an inotify watch of their own (leaves), for status against fs.inotify.max_user_watches.
  watchedFolders(): number {
    let watched = 0;
    for (const { watch: folderWatch } of this.#leaves.values()) if (folderWatch !== undefined) watched++;
    return watched;
  }

  async close(): Promise<void> {
    for (const timer of this.#relistTimers) clearTimeout(timer);
    this.#relistTimers.clear();
    for (const { watch: folderWatch } of this.#leaves.values()) folderWatch?.close();
    this.#leaves.clear();
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
      this.#structure?.add(dir);
      // At start the daemon's own scan covers what chokidar may miss; later, this folder is new and may fill at once.
      if (this.#ready) this.#relistLater(dir);
      return;
    }
    this.#addLeaf({ kind: role.kind, path: dir });
  }

  #relistLater(dir: string): void {
    for (const delay of RELIST_DELAYS_MS) {
      const timer = setTimeout(() => {
        this.#relistTimers.delete(timer);
        findLeafFolders(this.#root, this.#relative(dir))
          .then((leaves) => {
            for (const leaf of leaves) this.#addLeaf(leaf);
          })
          .catch((err: unknown) => this.#log.warn({ err, path: dir }, 'could not list a new folder'));
      }, delay);
      timer.unref();
      this.#relistTimers.add(timer);
    }
  }

  #addLeaf(leaf: Leaf): void {
    const dir = leaf.path;
    if (this.#leaves.has(dir) || this.#structure === undefined) return;
    this.#leaves.set(dir, { leaf, watch: this.#watchLeaf(leaf) });
    this.#onEvent({ type: 'leaf-added', leaf });
  }

  #removed(dir: string): void {
    const known = this.#leaves.get(dir);
    if (known === undefined) return;
    known.watch?.close();
    this.#leaves.delete(dir);
    this.#onEvent({ type: 'leaf-removed', path: dir });
  }

  #watchLeaf(leaf: Leaf): FolderWatch | undefined {
    try {
      const folderWatch = watchFolder(leaf.path, { persistent: true }, (_event, file) => {
        const name = file === null ? undefined : String(file);
        if (name !== undefined && !isCompletionSignal(leaf.kind, name)) return;
        this.#onEvent({ type: 'leaf-changed', leaf, file: name });
      });
      folderWatch.on('error', (err) => {
        folderWatch.close();
        const known = this.#leaves.get(leaf.path);
        if (known !== undefined) known.watch = undefined;
        if (errnoCode(err) !== 'ENOENT') this.#watchError(err, leaf.path);
      });
      return folderWatch;
    } catch (err) {
      this.#watchError(err as Error, leaf.path);
      return undefined;
    }
  }

  #watchError(err: Error, where: string): void {
    if (errnoCode(err) === 'ENOSPC') {
      this.#log.error(
        { err, path: where, watchedFolders: this.#leaves.size },
        `out of inotify watches while watching ${where}: raise fs.inotify.max_user_watches above ${this.#leaves.size * 2 + 1024} (sysctl -w fs.inotify.max_user_watches=N, and in /etc/sysctl.d/ to keep it); until then new backups there are found by the periodic rescan only`,
      );
      return;
    }
    this.#log.error({ err, path: where }, `watching ${where} failed; new backups there are found by the periodic rescan`);
  }
}
