import path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import type { AttributesAdapter } from '../attributes/adapter.js';
import { assertCapabilities } from '../attributes/capability.js';
import { IoctlAdapter } from '../attributes/ioctl.js';
import { systemClock, type Clock } from '../clock.js';
import { TakeTurns } from '../concurrency.js';
import { defaults, type Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { HealthService } from './health.js';
import { RemotePauses } from './pauses.js';
import { HoldService } from './holds.js';
import { InstanceLockService } from './instance-lock.js';
import { LiftLoop } from './lift-loop.js';
import { ProtectionService } from './protection.js';
import { ProvenService } from './proven.js';
import { RemoteSet } from './remotes.js';
import { ReclaimService } from './reclaim.js';
import { RELIST_EVERY_MS, RelistService } from './relist.js';
import { RescanService } from './rescan.js';
import type { Service } from './service.js';
import { StatusFiles } from './status-files.js';
import { StatusWriter } from './status-writer.js';
import { WatchService } from './watchers.js';

const HEALTH_CHECK_MS = 10_000;
// V8 lets its old generation grow to about 1.6 times what was live at its last collection (its factor under a 1 GB
// heap limit) before collecting again: at 1.2 (or its 8 MB minimum step) a burst's or a full proof's rounds no longer
// take the daemon's peak over 100 MB, for a few more collections. Not a heap limit; set here so that the systemd unit
// and the benchmark both get it (NODE_OPTIONS does not accept it). docs/performance.md, "Memory (session 11)".
const HEAP_GROWING_PERCENT = 20;

export interface DaemonOptions {
  config: Config;
  log: Logger;
  clock?: Clock;
  attributes?: AttributesAdapter;
  // false: no filesystem events at all, only the start-up scan and the periodic rescan (tests of lost events).
  watch?: boolean;
  // How often each remote root is checked to still be the protected remote (tests shorten it).
  healthCheckEveryMs?: number;
  // At most one relist of a remote this often (tests shorten it).
  relistEveryMs?: number;
  // The wait before a failed folder is tried again, after a first failure (tests shorten it).
  retryDelayMs?: number;
}

// The composition root of the protection daemon: a list of services, started in order and stopped in reverse.
export class Daemon {
  readonly #services: readonly Service[];
  readonly #status: StatusWriter;
  readonly #lock: InstanceLockService;
  #started = false;
  readonly #clock: Clock;
  readonly #config: Config;
  readonly #log: Logger;
  #startedAt = '';
  #stopping = false;
  // The flag helpers this daemon started (none when the adapter was passed in): ended at stop.
  readonly #ownAttributes: IoctlAdapter | undefined;

  constructor(options: DaemonOptions) {
    const { config, log, retryDelayMs } = options;
    const clock = options.clock ?? systemClock;
    const attributes = options.attributes ?? (this.#ownAttributes = new IoctlAdapter());
    const everyMs = options.healthCheckEveryMs ?? HEALTH_CHECK_MS;
    // Lock batches and lift passes take turns; paused remotes are skipped by everything that acts on them.
    const base = { config, clock, attributes, log, pauses: new RemotePauses(), turns: new TakeTurns() };

    const lock = new InstanceLockService({ indexPath: config.indexPath, log });
    const statusFiles = new StatusFiles(base);
    const remotes = new RemoteSet({ ...base, statusFiles });
    const proven = new ProvenService({ ...base, remotes });
    const protectLog = log.child({ module: 'protect' });
    const protection = new ProtectionService({ ...base, remotes, proven, log: protectLog, retryDelayMs });
    const holds = new HoldService({ ...base, remotes, protection, log: log.child({ module: 'hold' }) });
    const enabled = options.watch ?? true;
    const watchers = new WatchService({
      remotes,
      protection,
      proven,
      log: log.child({ module: 'watcher' }),
      enabled,
      rescanEveryMs: config.rescanEveryMs,
      caps: new Map(config.remotes.map((r) => [r.id, r.maxWatchedFolders ?? defaults.maxWatchedFolders])),
    });
    const rescan = new RescanService({ ...base, remotes, protection, watchers, proven, everyMs: config.rescanEveryMs });
    const relist = new RelistService({ ...base, watchers, rescan, everyMs: options.relistEveryMs ?? RELIST_EVERY_MS });
    protection.onSettled((folder) => relist.request(folder.remote, path.relative(folder.remote.root, folder.path)));
    const lift = new LiftLoop({ ...base, remotes });
    const reclaim = new ReclaimService({ ...base, remotes });
    const startedAt = (): string => this.#startedAt;
    const status = new StatusWriter({ ...base, remotes, statusFiles, protection, watchers, lift, holds, startedAt });
    const afterCheck = (): Promise<void> => status.write();
    const health = new HealthService({ ...base, remotes, statusFiles, watchers, rescan, everyMs, afterCheck });

    this.#clock = clock;
    this.#config = config;
    this.#log = log;
    // The order is the start-up sequence: the index taken (one daemon per index); remotes checked and opened; what was
    // proven read back; the scheduler; the repair lifts' holds; watches; the catch-up; relists after a settled link;
    // health checks; the first lift pass; unlinking what the index forgot, in the background; the first status.
    this.#services = [
      lock,
      remotes,
      proven,
      protection,
      holds,
      watchers,
      rescan,
      relist,
      health,
      lift,
      reclaim,
      status,
    ];
    this.#status = status;
    this.#lock = lock;
  }

  async start(): Promise<void> {
    this.#startedAt = new Date(this.#clock.now()).toISOString();
    setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
    assertCapabilities();
    for (const warning of this.#config.warnings ?? []) this.#log.warn({ module: 'config' }, warning);
    for (const service of this.#services) {
      // A SIGTERM during start-up stops the daemon; nothing may be started after that.
      if (this.#stopping) return;
      await service.start();
    }
    // Only a daemon whose start-up checks passed records its stop: a failed one may not write where indexPath is.
    this.#started = true;
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    for (const service of [...this.#services].reverse()) {
      // The stop is recorded while the index is still this daemon's: a daemon started right after cannot be overwritten.
      if (service === this.#lock && this.#started)
        await this.#status
          .writeStopped()
          .catch((err: unknown) => this.#log.warn({ err }, 'could not record the stop in status.json'));
      await service.stop();
    }
    await this.#ownAttributes?.close();
  }
}
