import type { Clock } from '../clock.js';
import { readClockState } from '../clockguard/state.js';
import { mapLimited } from '../concurrency.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { AttributesAdapter } from '../attributes/adapter.js';
import {
  DAEMON_STATUS_VERSION,
  writeDaemonStatus,
  type DaemonStatus,
  type ChainCostCounts,
  type RestorePointCounts,
} from '../status/daemon-status.js';
import { lookupByName, surveyVms } from '../status/restore-survey.js';
import { judgeVm, summarize, type VmRestorePoints } from '../status/restore-points.js';
import { surveyChainCost, type SizeCache } from '../status/chain-cost-survey.js';
import type { ChainCost, VmChainCost } from '../status/chain-cost.js';
import { withHeldRemote } from '../remote/held.js';
import { renderMetrics, writeMetricsFile } from '../status/metrics.js';
import { VERSION } from '../version.js';
import type { RemotePauses } from './pauses.js';
import type { HoldService } from './holds.js';
import type { LiftLoop } from './lift-loop.js';
import type { ProtectionService } from './protection.js';
import type { RemoteSet } from './remotes.js';
import type { Service } from './service.js';
import type { StatusFiles } from './status-files.js';
import type { WatchService } from './watchers.js';

export interface StatusDeps {
  config: Config;
  clock: Clock;
  log: Logger;
  attributes: AttributesAdapter;
  remotes: RemoteSet;
  statusFiles: StatusFiles;
  pauses: RemotePauses;
  protection: ProtectionService;
  watchers: WatchService;
  lift: LiftLoop;
  holds: HoldService;
  startedAt: () => string;
}

// status.json (read by `status`) and the metrics file: written once protection runs, then at every health check.
export class StatusWriter implements Service {
  readonly name = 'status';
  readonly #deps: StatusDeps;
  #stopped = false;
  #writing: Promise<void> | undefined;
  // Restore points per remote, counted in the background every rescanEvery (a walk of the remote: not every 10 s).
  readonly #restorePoints = new Map<string, RestorePointCounts>();
  readonly #chainCost = new Map<string, ChainCost>();
  // Per remote: the bytes of locked leftovers, walked once (status/chain-cost-survey.ts).
  readonly #sizes = new Map<string, SizeCache>();
  #counting: Promise<void> | undefined;
  #countedAt: number | undefined;
  // Ends the count's wait for the rounds in hand: at stop, or after rescanEvery (a scheduler kept busy, an event flood).
  #endWait: (() => void) | undefined;

  constructor(deps: StatusDeps) {
    this.#deps = deps;
  }

  async start(): Promise<void> {
    await this.write().catch((err: unknown) =>
      this.#deps.log.error({ err }, 'could not write status.json or the metrics file'),
    );
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#endWait?.();
    await this.#writing;
    await this.#counting;
  }

  // The last word of a daemon that stopped cleanly, once every other service has and before it lets go of the index:
  // `status` says it stopped at once, rather than once its heartbeat is stale.
  async writeStopped(): Promise<void> {
    const status = this.#daemonStatus((await readClockState(this.#deps.config.indexPath)).frozen);
    await writeDaemonStatus(this.#deps.config.indexPath, { ...status, stoppedAt: status.heartbeat });
  }

  write(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    const writing = this.#write().finally(() => {
      if (this.#writing === writing) this.#writing = undefined;
    });
    this.#writing = writing;
    return writing;
  }

  async #write(): Promise<void> {
    const { config } = this.#deps;
    this.#countRestorePointsIfDue();
    // Index entries counted afresh for their cap (one stat per day bucket once counted); kept as they were on failure.
    for (const remote of this.#deps.remotes.list) await remote.index.countEntries().catch(() => undefined);
    const clock = await readClockState(config.indexPath);
    const frozen = clock.frozen;
    await writeDaemonStatus(config.indexPath, this.#daemonStatus(frozen));
    if (config.metricsFile !== undefined)
      await writeMetricsFile(config.metricsFile, await this.#metrics(frozen !== undefined));
  }

  #daemonStatus(frozen: { reason: string } | undefined): DaemonStatus {
    const { clock, remotes, pauses, protection, lift, watchers, statusFiles } = this.#deps;
    const scheduler = protection.scheduler;
    const counters = scheduler?.record.counters;
    return {
      version: DAEMON_STATUS_VERSION,
      daemonVersion: VERSION,
      pid: process.pid,
      startedAt: this.#deps.startedAt(),
      heartbeat: new Date(clock.now()).toISOString(),
      remotes: remotes.list.map((r) => {
        const pause = pauses.why(r);
        const away = pause?.waitingForXo === true ? undefined : pause;
        return {
          id: r.id,
          root: r.root,
          healthy: away === undefined,
          problem: pause?.problem,
          unhealthySince: away?.since,
          waitingForXo: pause?.waitingForXo,
          protectedByNameOnly: r.encrypted,
          vmsWithUnknownChain: scheduler?.facts.count('chainUnknown', r.root) ?? 0,
          vmsWithFlatVhds: scheduler?.facts.count('flatVhds', r.root) ?? 0,
          vmsWithPlantedLinks: scheduler?.facts.count('plantedLinks', r.root) ?? 0,
          lastLift: lift.lastLift(r),
          liftSkipped: lift.skipped(r),
          restorePoints: this.#restorePoints.get(r.id),
          chainCost: countsOf(this.#chainCost.get(r.id)),
          caps: { watchedFolders: watchers.capFigures(r), indexEntries: r.index.entries.figures() },
        };
      }),
      lifting: frozen === undefined ? { frozen: false } : { frozen: true, reason: frozen.reason },
      lastLock: scheduler?.record.lastLock,
      errors:
        pauses.outages +
        statusFiles.failures +
        (counters === undefined ? 0 : counters.lockFailures + counters.indexFailures + counters.reconcileErrors),
      securityWarnings: (counters?.refusals ?? 0) + this.#deps.holds.events + statusFiles.securityWarnings,
      watchedFolders: watchers.watchedFolders(),
      foldersBackingOff: scheduler?.backingOff() ?? 0,
    };
  }

  async #metrics(liftingFrozen: boolean): Promise<string> {
    const { clock, remotes, pauses, protection, lift, holds } = this.#deps;
    const scheduler = protection.scheduler;
    const counters = scheduler?.record.counters;
    return renderMetrics({
      version: VERSION,
      heartbeatMs: clock.now(),
      liftingFrozen,
      lockFailuresTotal: counters?.lockFailures ?? 0,
      indexFailuresTotal: counters?.indexFailures ?? 0,
      securityWarningsTotal: (counters?.refusals ?? 0) + holds.events + this.#deps.statusFiles.securityWarnings,
      pendingRechecks: scheduler?.pendingRechecks() ?? 0,
      foldersBackingOff: scheduler?.backingOff() ?? 0,
      coverageGaps: scheduler?.coverage.gaps() ?? 0,
      lastSuccessfulLockMs: scheduler?.record.lastSuccessfulLockAt,
      lastReconcileMs: scheduler?.record.lastReconcileAt,
      remotes: await mapLimited(remotes.list, 1, async (r) => {
        const totals = lift.totals(r);
        return {
          id: r.id,
          healthy: pauses.why(r)?.waitingForXo !== false,
          // Counted now, not at the last lift pass: every lock batch adds entries. Left out when the index cannot be
          // read (the metric goes missing rather than wrong).
          protectedUnits: await r.index.countEntries().catch(() => undefined),
          pendingUnits: scheduler?.coverage.pendingUnits(r.id) ?? 0,
          liftFailuresTotal: totals?.failures ?? 0,
          restorePoints: this.#restorePoints.get(r.id),
          chainCost: this.#chainCost.get(r.id),
          heldVms: holds.holds(r).length,
          watches: this.#deps.watchers.capFigures(r),
          indexEntries: r.index.entries.figures(),
          lastSuccessfulLiftMs: totals?.lastSuccessMs,
        };
      }),
    });
  }

  #countRestorePointsIfDue(): void {
    const { clock, config, log } = this.#deps;
    const now = clock.now();
    if (this.#counting !== undefined || (this.#countedAt !== undefined && now - this.#countedAt < config.rescanEveryMs))
      return;
    this.#countedAt = now;
    this.#counting = this.#countRestorePoints()
      .catch((err: unknown) => log.error({ err }, 'could not count the restore points'))
      .finally(() => (this.#counting = undefined));
  }

  async #roundsInHand(protection: ProtectionService): Promise<void> {
    if (this.#stopped) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      protection.idle(),
      new Promise<void>((resolve) => {
        this.#endWait = resolve;
        timer = setTimeout(resolve, this.#deps.config.rescanEveryMs);
      }),
    ]);
    clearTimeout(timer);
    this.#endWait = undefined;
  }

  async #countRestorePoints(): Promise<void> {
    const { remotes, pauses, attributes, clock, protection } = this.#deps;
    // After the rounds queued now (the full proof that follows start-up, a burst): beside them, the survey's chunks
    // and their garbage added to the rounds' own at the peak (docs/performance.md, "Start-up, idle and memory").
    // Never longer than rescanEvery, and not at all once stopping: the scheduler stops after this service, and a flood
    // of events (anyone with XO's credentials) keeps it busy, which would hold the daemon's stop and every count.
    await this.#roundsInHand(protection);
    for (const remote of remotes.list) {
      if (this.#stopped) return;
      if (pauses.why(remote) !== undefined) {
        this.#restorePoints.delete(remote.id);
        this.#chainCost.delete(remote.id);
        continue;
      }
      // The index's names only, and the VMs a chunk at a time, only counts kept: the survey's memory follows a chunk,
      // not the remote (it runs beside the full proof that follows start-up).
      const lookup = await lookupByName(remote.index);
      const surveyed = { ...remote, protectChains: remote.protectChains ?? this.#deps.config.protectChains };
      const readImmutable = (paths: readonly string[]) => attributes.isImmutable(remote, paths);
      const now = clock.now();
      const { points, cost } = await withHeldRemote(remote, async (held) => {
        const judged: VmRestorePoints[] = [];
        const leftovers: VmChainCost[] = [];
        await surveyVms(held, surveyed, lookup, readImmutable, now, (vms) => {
          for (const vm of vms) {
            const points = judgeVm(vm.model, now);
            if (points.inWindow > 0) judged.push(points);
            if (vm.leftovers.length > 0 || vm.unfreed.length > 0)
              leftovers.push({ vm: vm.vm, leftovers: vm.leftovers, unfreed: vm.unfreed });
          }
        });
        const points = summarize(judged);
        const sizes: SizeCache = this.#sizes.get(remote.id) ?? (new Map() as SizeCache);
        this.#sizes.set(remote.id, sizes);
        return { points, cost: await surveyChainCost(held, surveyed, leftovers, readImmutable, sizes) };
      });
      this.#chainCost.set(remote.id, cost);
      this.#restorePoints.set(remote.id, {
        inWindow: points.inWindow,
        protected: points.protected,
        unprotected: points.unprotected,
        chainUnknown: points.chainUnknown,
        checkedAt: new Date(clock.now()).toISOString(),
      });
    }
  }
}

function countsOf(cost: ChainCost | undefined): ChainCostCounts | undefined {
  return cost === undefined ? undefined : { ...cost, unfreedVdis: cost.unfreedVdis.length };
}
