import type { RemoteContext } from '../context/remote-context.js';
import type { Logger } from '../log/logger.js';
import { loadProven, saveProven } from '../protect/proven-file.js';
import { ProvenBackups } from '../protect/proven.js';
import { Periodic } from './periodic.js';
import type { RemoteSet } from './remotes.js';
import type { Service } from './service.js';

// A burst proves thousands of backups a minute: the file is written at most this often, and at stop.
const SAVE_EVERY_MS = 60_000;

// Which backups are proven locked, per remote: read at start so a restart skips them, saved while running and at stop.
export class ProvenService implements Service {
  readonly name = 'proven backups';
  readonly #remotes: RemoteSet;
  readonly #log: Logger;
  readonly #byRemote = new Map<RemoteContext, ProvenBackups>();
  readonly #saver: Periodic;

  constructor(deps: { remotes: RemoteSet; log: Logger }) {
    this.#remotes = deps.remotes;
    this.#log = deps.log;
    this.#saver = new Periodic(
      SAVE_EVERY_MS,
      () => this.#save(),
      () => undefined,
    );
  }

  get(remote: RemoteContext): ProvenBackups | undefined {
    return this.#byRemote.get(remote);
  }

  count(): number {
    return [...this.#byRemote.values()].reduce((n, p) => n + p.size, 0);
  }

  async start(): Promise<void> {
    for (const remote of this.#remotes.list) {
      const proven = await loadProven(remote.index.folder).catch((err: unknown) => {
        this.#log.warn(
          { err, remote: remote.id },
          'could not read which backups were proven locked; the start-up catch-up looks at every backup',
        );
        return new ProvenBackups();
      });
      this.#byRemote.set(remote, proven);
    }
    this.#saver.arm();
  }

  async stop(): Promise<void> {
    await this.#saver.stop();
    await this.#save();
  }

  async #save(): Promise<void> {
    for (const [remote, proven] of this.#byRemote) {
      if (!proven.takeChanged()) continue;
      // The identities the lock batches recorded reach the disk before the proof that relies on them.
      await remote.index
        .sync()
        .then(() => saveProven(remote.index.folder, proven))
        .catch((err: unknown) => {
          proven.markChanged();
          this.#log.warn(
            { err, remote: remote.id },
            'could not save which backups are proven locked; ' +
              'tried again in a minute (a start-up meanwhile looks at every backup again)',
          );
        });
    }
  }
}
