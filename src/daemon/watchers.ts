import { stat } from 'node:fs/promises';
import type { RemoteContext } from '../context/remote-context.js';
import type { CapFigures } from '../caps.js';
import { defaults } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { Leaf } from '../watcher/watcher.js';
import { RemoteWatcher, type WatchEvent } from '../watcher/watcher.js';
import type { ProtectionService } from './protection.js';
import type { ProvenService } from './proven.js';
import type { RemoteSet } from './remotes.js';
import type { Service } from './service.js';

// Turns filesystem events on every remote into "reconcile this folder" hints; `enabled: false` watches nothing.
export class WatchService implements Service {
  readonly name = 'watchers';
  readonly #remotes: RemoteSet;
  readonly #protection: ProtectionService;
  readonly #proven: ProvenService;
  readonly #log: Logger;
  readonly #enabled: boolean;
  readonly #rescanEveryMs: number;
  // Caps by remote id (maxWatchedFolders).
  readonly #caps: ReadonlyMap<string, number>;
  readonly #watchers = new Map<RemoteContext, RemoteWatcher>();
  #stopped = false;

  constructor(deps: {
    remotes: RemoteSet;
    protection: ProtectionService;
    proven: ProvenService;
    log: Logger;
    enabled: boolean;
    rescanEveryMs: number;
    caps: ReadonlyMap<string, number>;
  }) {
    this.#remotes = deps.remotes;
    this.#protection = deps.protection;
    this.#proven = deps.proven;
    this.#log = deps.log;
    this.#enabled = deps.enabled;
    this.#rescanEveryMs = deps.rescanEveryMs;
    this.#caps = deps.caps;
  }

  async start(): Promise<void> {
    for (const remote of this.#remotes.list) {
      if (this.#stopped) return;
      await this.#watch(remote);
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all([...this.#watchers.values()].map((w) => w.close()));
    this.#watchers.clear();
  }

  watchedFolders(): number {
    return [...this.#watchers.values()].reduce((n, w) => n + w.watchedFolders(), 0);
  }

  // A remote's watches against its cap; undefined when it is not watched (watching off, or the remote away).
  capFigures(remote: RemoteContext): CapFigures | undefined {
    return this.#watchers.get(remote)?.watches.figures();
  }

  // Leaves found by a listing: watched from now on, if they were not already.
  adopt(remote: RemoteContext, leaves: readonly Leaf[]): void {
    this.#watchers.get(remote)?.adopt(leaves);
  }

  // A remote that went away: its watches are dead.
  async close(remote: RemoteContext): Promise<void> {
    const watcher = this.#watchers.get(remote);
    this.#watchers.delete(remote);
    await watcher?.close();
  }

  // A remote that came back or was mounted again: watched afresh. Returns the device its root is on now.
  async restart(remote: RemoteContext): Promise<number> {
    await this.close(remote);
    const device = (await stat(remote.root)).dev;
    if (!this.#stopped) await this.#watch(remote);
    return device;
  }

  async #watch(remote: RemoteContext): Promise<void> {
    if (!this.#enabled) return;
    const log = this.#log.child({ remote: remote.id });
    const watcher = new RemoteWatcher(remote, log, (event) => this.#onEvent(remote, event), {
      maxWatchedFolders: this.#caps.get(remote.id) ?? defaults.maxWatchedFolders,
      rescanEveryMs: this.#rescanEveryMs,
    });
    // Two restarts at once (health's, a relist's): the one set last is kept, the other closed.
    const before = this.#watchers.get(remote);
    this.#watchers.set(remote, watcher);
    await before?.close();
    await watcher.start();
  }

  #onEvent(remote: RemoteContext, event: WatchEvent): void {
    if (event.type === 'leaf-removed') {
      this.#protection.forget(event.path);
      this.#proven.get(remote)?.forgetFolder(event.path);
    } else if (event.type === 'folder-linked')
      this.#protection.enqueue({ remote, ...event.leaf, linked: true }, 'event');
    else this.#protection.enqueue({ remote, ...event.leaf }, 'event');
  }
}
