import type { TakeTurns } from '../concurrency.js';
import type { Config } from '../config/schema.js';
import { FreedFiles, freedRemotes } from '../index/freed.js';
import type { Logger } from '../log/logger.js';
import { Periodic } from './periodic.js';
import type { RemoteSet } from './remotes.js';
import type { Service } from './service.js';

// Often enough that a lift pass's forgotten files are gone within a minute of it (or of liftEvery, when shorter).
const RECLAIM_EVERY_MS = 60_000;

export interface ReclaimDeps {
  config: Config;
  remotes: RemoteSet;
  turns: TakeTurns;
  log: Logger;
}

// Unlinks the files the index forgot (index/freed.ts) in the background: at start (a lift run while the daemon was
// stopped leaves them) and every minute, a few at a time in turns with the lock batches and lift passes, so that a
// backup arriving meanwhile waits for one turn at most. The folders of remotes no longer configured are emptied in the
// same turns, then removed: nothing would ever reclaim them otherwise.
export class ReclaimService implements Service {
  readonly name = 'reclaim';
  readonly #deps: ReclaimDeps;
  readonly #passes: Periodic;

  constructor(deps: ReclaimDeps) {
    this.#deps = deps;
    this.#passes = new Periodic(
      Math.min(deps.config.liftEveryMs, RECLAIM_EVERY_MS),
      () => this.#reclaim(),
      (err: unknown) =>
        deps.log.warn({ err, module: 'index' }, 'unlinking forgotten index files failed; retried later'),
    );
  }

  // Not awaited: start-up does not wait for the disk's discards.
  async start(): Promise<void> {
    this.#passes.arm();
    void this.#passes.runNow();
  }

  async stop(): Promise<void> {
    await this.#passes.stop();
  }

  async #reclaim(): Promise<void> {
    const { config, remotes } = this.#deps;
    for (const remote of remotes.list) await this.#reclaimIn(remote.index.freed, remote.id);
    const configured = new Set(config.remotes.map((remote) => remote.id));
    for (const id of freedRemotes(config.indexPath)) {
      if (configured.has(id)) continue;
      const freed = new FreedFiles(config.indexPath, id);
      await this.#reclaimIn(freed, id);
      if (!this.#passes.stopped && (await freed.removeIfEmpty()))
        this.#deps.log.debug({ module: 'index', remote: id }, 'forgotten index files of an unconfigured remote gone');
    }
  }

  async #reclaimIn(freed: FreedFiles, remote: string): Promise<void> {
    const unlinked = await freed.reclaim(
      (work) => this.#deps.turns.run(work),
      () => this.#passes.stopped,
    );
    if (unlinked > 0) this.#deps.log.debug({ module: 'index', remote, unlinked }, 'forgotten index files unlinked');
  }
}
