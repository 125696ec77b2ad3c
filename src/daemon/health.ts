import { stat } from 'node:fs/promises';
import type { AttributesAdapter } from '../attributes/adapter.js';
import type { Clock } from '../clock.js';
import type { RemoteContext } from '../context/remote-context.js';
import type { Logger } from '../log/logger.js';
import { remoteHealthProblem } from '../remote/health.js';
import type { RemotePauses } from './pauses.js';
import { Periodic } from './periodic.js';
import type { RemoteSet } from './remotes.js';
import type { RescanService } from './rescan.js';
import type { Service } from './service.js';
import type { StatusFiles } from './status-files.js';
import type { WatchService } from './watchers.js';

export interface HealthDeps {
  remotes: RemoteSet;
  watchers: WatchService;
  rescan: RescanService;
  pauses: RemotePauses;
  statusFiles: StatusFiles;
  attributes: AttributesAdapter;
  clock: Clock;
  log: Logger;
  everyMs: number;
  // Called after every check, whatever it found: the status heartbeat must not call a running daemon dead.
  afterCheck: () => Promise<void>;
}

// A remote that goes away (unmounted export, failed disk) pauses its protection, loudly, and nothing is written
// where it was; when it is back, or mounted again, its watches are set up again and a rescan catches up.
export class HealthService implements Service {
  readonly name = 'remote health';
  readonly #deps: HealthDeps;
  readonly #periodic: Periodic;
  readonly #devices = new Map<RemoteContext, number>();

  constructor(deps: HealthDeps) {
    this.#deps = deps;
    this.#periodic = new Periodic(
      deps.everyMs,
      () => this.#checkAll(),
      (err: unknown) => deps.log.error({ err }, 'remote health check failed'),
    );
  }

  async start(): Promise<void> {
    for (const remote of this.#deps.remotes.list) {
      const device = this.#deps.remotes.deviceAtOpen(remote);
      if (device !== undefined) this.#devices.set(remote, device);
    }
    this.#periodic.arm();
  }

  async stop(): Promise<void> {
    await this.#periodic.stop();
  }

  async #checkAll(): Promise<void> {
    try {
      for (const remote of this.#deps.remotes.list) {
        if (this.#periodic.stopped) return;
        await this.#check(remote).catch((err: unknown) =>
          this.#deps.log.error({ err, remote: remote.id }, `health check of remote ${remote.id} failed`),
        );
      }
    } finally {
      if (!this.#periodic.stopped) await this.#deps.afterCheck();
    }
  }

  async #check(remote: RemoteContext): Promise<void> {
    const { pauses, statusFiles, attributes, clock } = this.#deps;
    const log = this.#deps.log.child({ remote: remote.id });
    if (pauses.awaitsActivation(remote)) return this.#checkWaiting(remote);
    // First: a status file the daemon failed to write is not taken for an unmounted remote, but only on the filesystem
    // the remote was on (an unmounted remote's folder, or another disk mounted there, must not get it, nor pass as one).
    const sameDevice = (await stat(remote.root).catch(() => undefined))?.dev === this.#devices.get(remote);
    if (sameDevice) await statusFiles.retry(remote);
    const markerFailed = sameDevice && statusFiles.markerPending(remote);
    const problem = await remoteHealthProblem(remote, attributes, { markerFailed });
    if (problem !== undefined && !pauses.isPaused(remote)) {
      pauses.pause(remote, { problem, since: new Date(clock.now()).toISOString(), waitingForXo: false });
      log.error(
        { problem },
        `remote ${remote.id} is unavailable: ${problem}. Its protection is paused and nothing is written there; ` +
          `checking again every ${Math.round(this.#deps.everyMs / 1000)} s`,
      );
      await this.#deps.watchers.close(remote);
    } else if (problem === undefined && pauses.isPaused(remote)) {
      pauses.resume(remote);
      log.warn(`remote ${remote.id} is back; catching up on what was written while it was away`);
      await this.#watchAgain(remote);
    } else if (problem === undefined && (await stat(remote.root)).dev !== this.#devices.get(remote)) {
      log.warn(
        `remote ${remote.id} is another mount of its filesystem than before (remounted?); watching it again and catching up`,
      );
      await this.#watchAgain(remote);
    }
  }

  // Once XO has written to a new remote (or its key file reads it), it is protected like any other (a watch event may
  // have seen it first). Its watches are set up again: the empty folder may have been the mount point of a remote mounted since.
  async #checkWaiting(remote: RemoteContext): Promise<void> {
    if (await this.#deps.remotes.activateIfWritten(remote)) await this.#watchAgain(remote);
  }

  async #watchAgain(remote: RemoteContext): Promise<void> {
    this.#devices.set(remote, await this.#deps.watchers.restart(remote));
    await this.#deps.rescan.rescanRemote(remote, 'event', 'scan');
  }
}
