import type { Clock } from '../clock.js';
import type { RemoteContext } from '../context/remote-context.js';
import type { Logger } from '../log/logger.js';
import type { RemotePauses } from './pauses.js';
import type { RescanService } from './rescan.js';
import type { Service } from './service.js';
import type { WatchService } from './watchers.js';

// At most one relist of a remote this often: a loop of links costs one listing of the remote per period.
export const RELIST_EVERY_MS = 5_000;

// After xo-vm-backups or a schedule's folder was settled in place of a link (protect/linked-folder.ts): the remote's
// watches are made anew (chokidar reports neither the folder back nor a link made again under its name) and the
// leaves under each such folder listed again. The new watches lose the leaves' own: every leaf is adopted again (a
// look at each), so a loop of links buys at most one look at every folder per period.
interface RelistDeps {
  watchers: WatchService;
  rescan: RescanService;
  pauses: RemotePauses;
  clock: Clock;
  log: Logger;
  everyMs: number;
}

export class RelistService implements Service {
  readonly name = 'relist';
  readonly #deps: RelistDeps;
  readonly #due = new Map<RemoteContext, { timer: NodeJS.Timeout; folders: Set<string> }>();
  readonly #last = new Map<RemoteContext, number>();
  #running: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(deps: RelistDeps) {
    this.#deps = deps;
  }

  async start(): Promise<void> {}

  // `folder`: the structural folder settled, relative to the remote's root.
  request(remote: RemoteContext, folder: string): void {
    if (this.#stopped) return;
    const due = this.#due.get(remote);
    if (due !== undefined) {
      due.folders.add(folder);
      return;
    }
    const folders = new Set([folder]);
    const wait = Math.max(0, (this.#last.get(remote) ?? -Infinity) + this.#deps.everyMs - this.#deps.clock.now());
    const timer = setTimeout(() => {
      this.#due.delete(remote);
      this.#last.set(remote, this.#deps.clock.now());
      this.#running = this.#running.then(() => this.#relist(remote, folders));
    }, wait);
    timer.unref();
    this.#due.set(remote, { timer, folders });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const { timer } of this.#due.values()) clearTimeout(timer);
    this.#due.clear();
    await this.#running;
  }

  async #relist(remote: RemoteContext, folders: ReadonlySet<string>): Promise<void> {
    // A paused remote is watched again, and listed, by health when it is back.
    if (this.#stopped || this.#deps.pauses.isPaused(remote)) return;
    try {
      await this.#deps.watchers.restart(remote);
      await this.#deps.rescan.rescanFolder(remote, '');
      for (const folder of folders) await this.#deps.rescan.rescanFolder(remote, folder, 'event');
    } catch (err) {
      this.#deps.log.warn({ err, remote: remote.id }, 'could not list the remote again after a link was settled');
    }
  }
}
