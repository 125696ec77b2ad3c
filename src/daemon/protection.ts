import type { AttributesAdapter } from '../attributes/adapter.js';
import type { Clock } from '../clock.js';
import type { TakeTurns } from '../concurrency.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { settleTimeFor } from '../backup/completion.js';
import type { LeafFolder } from '../protect/context.js';
import { lockUnits } from '../protect/locker.js';
import { reconcileFolder } from '../protect/reconcile.js';
import { ProtectionScheduler, type Urgency } from '../protect/scheduler.js';
import type { ProvenService } from './proven.js';
import type { RemoteSet } from './remotes.js';
import type { Service } from './service.js';

export interface ProtectionDeps {
  config: Config;
  attributes: AttributesAdapter;
  clock: Clock;
  log: Logger;
  proven: ProvenService;
  remotes: RemoteSet;
  // Lock batches and lift passes take turns: a lift must not unlock a unit while a batch records its identity.
  turns: TakeTurns;
  // The wait before a failed folder is tried again, after a first failure (tests shorten it).
  retryDelayMs?: number | undefined;
}

// Reconciles the folders that events and scans name, and locks what they find, in shared batches.
export class ProtectionService implements Service {
  readonly name = 'protection';
  readonly #deps: ProtectionDeps;
  #scheduler: ProtectionScheduler | undefined;
  #onSettled: (folder: LeafFolder) => void = () => undefined;

  constructor(deps: ProtectionDeps) {
    this.#deps = deps;
  }

  // Called after a structural folder was settled in place of a link (protect/linked-folder.ts).
  onSettled(listener: (folder: LeafFolder) => void): void {
    this.#onSettled = listener;
  }

  get scheduler(): ProtectionScheduler | undefined {
    return this.#scheduler;
  }

  async start(): Promise<void> {
    const { config, attributes, clock, log, proven, remotes, turns } = this.#deps;
    this.#scheduler = new ProtectionScheduler({
      reconcile: async (folder, full) => {
        if (!(await remotes.activateIfWritten(folder.remote))) return { requests: [], refusals: [], provable: [] };
        const report = await reconcileFolder(folder, {
          now: clock.now(),
          // A json that does not parse on a plain remote is being written: only a long silence makes it complete.
          jsonSettleMs: settleTimeFor(folder.remote.encrypted, config.jsonSettleMs),
          proven: proven.get(folder.remote),
          full,
          protectChains: folder.remote.protectChains ?? config.protectChains,
          // Only the flags of encrypted data directories that look orphaned (remote/by-name.ts).
          flags: attributes,
          maxClockJumpMs: config.maxClockJumpMs,
        });
        if (report.relist === true) this.#onSettled(folder);
        return report;
      },
      proven: (folder) => proven.get(folder.remote),
      lock: (requests) => turns.run(() => lockUnits(requests, attributes, clock, log)),
      // A full proof reads the flags of what it finds locked as indexed: one helper run per round and remote.
      flags: attributes,
      clock,
      log,
      ...(this.#deps.retryDelayMs === undefined ? {} : { retryDelayMs: this.#deps.retryDelayMs }),
    });
  }

  enqueue(folder: LeafFolder, urgency: Urgency): void {
    this.#scheduler?.enqueue(folder, urgency);
  }

  forget(folderPath: string): void {
    this.#scheduler?.forget(folderPath);
  }

  async idle(): Promise<void> {
    await this.#scheduler?.idle();
  }

  async stop(): Promise<void> {
    await this.#scheduler?.stop();
  }
}
