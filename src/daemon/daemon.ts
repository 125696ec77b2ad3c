import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { AttributesAdapter } from '../attributes/adapter.js';
import { assertCapabilities } from '../attributes/capability.js';
import { ChattrAdapter } from '../attributes/chattr.js';
import { selfTestRemote } from '../attributes/selftest.js';
import { systemClock, type Clock } from '../clock.js';
import type { Config, RemoteConfig } from '../config/schema.js';
import { ClockGuard } from '../clockguard/guard.js';
import { readClockState } from '../clockguard/state.js';
import { writeDaemonStatus } from '../status/daemon-status.js';
import { renderMetrics, writeMetricsFile } from '../status/metrics.js';
import { isInside } from '../paths.js';
import { AppError } from '../errors.js';
import { IndexStore } from '../index/store.js';
import type { Logger } from '../log/logger.js';
import { remoteHealthProblem } from '../remote/health.js';
import { isEncryptedRemote, resolveRemoteRoot } from '../remote/root.js';
import { realpathOfNearest } from '../paths.js';
import { findLeafFolders } from '../remote/scan.js';
import { rebuildIndex } from '../rebuild/rebuild.js';
import type { LeafFolder } from '../protect/context.js';
import type { RemoteContext } from '../context/remote-context.js';
import { liftRemote } from '../lift/apply.js';
import { logLiftReport } from '../lift/report.js';
import { settleTimeFor } from '../protect/completion.js';
import { lockUnits } from '../protect/locker.js';
import { loadProven, saveProven } from '../protect/proven-file.js';
import { ProvenBackups } from '../protect/proven.js';
import { reconcileFolder } from '../protect/reconcile.js';
import { MAX_TIMER_MS, ProtectionScheduler, type Urgency } from '../protect/scheduler.js';
import { IMMUTABILITY_FILE, immutabilityStatus, writeImmutabilityFile } from '../remote/immutability-file.js';
import { VERSION } from '../version.js';
import { RemoteWatcher, type WatchEvent } from '../watcher/watcher.js';

const CLOCK_CHECK_MS = 60_000;
const HEALTH_CHECK_MS = 10_000;
// A burst proves thousands of backups a minute: the file is written at most this often, and at stop.
const PROVEN_SAVE_MS = 60_000;

export interface DaemonOptions {
  config: Config;
  log: Logger;
  clock?: Clock;
  attributes?: AttributesAdapter;
  // Tests pass a fake /proc/self/status; production reads the real one.
  procStatus?: string;
  // false: no filesystem events at all, only the start-up scan and the periodic rescan (tests of lost events).
  watch?: boolean;
  // How often each remote root is checked to still be the protected remote (tests shorten it).
  healthCheckEveryMs?: number;
}

// The composition root of the protection daemon: the constructor only stores; start() checks, builds and runs; stop() undoes.
export class Daemon {
  readonly #config: Config;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #attributes: AttributesAdapter;
  readonly #procStatus: string | undefined;
  readonly #watch: boolean;
  readonly #healthCheckEveryMs: number;
  readonly #unavailable = new Map<RemoteContext, { problem: string; since: string }>();
  readonly #proven = new Map<RemoteContext, ProvenBackups>();
  #provenSavedAt = 0;
  // The device of each root: a different one means the remote was unmounted and mounted again, and watches on the old
  // one are dead.
  readonly #rootDevices = new Map<RemoteContext, number>();
  #startedAt = '';
  readonly #lastLift = new Map<RemoteContext, { at: string; unlocked: number; failed: number; suspicious: number }>();
  readonly #liftTotals = new Map<RemoteContext, { failures: number; kept: number; lastSuccessMs?: number }>();
  #healthTimer: NodeJS.Timeout | undefined;
  // Checks in flight, awaited by stop() so nothing writes after it returns.
  readonly #inFlight = new Set<Promise<unknown>>();
  readonly #watchers = new Map<RemoteContext, RemoteWatcher>();
  #scheduler: ProtectionScheduler | undefined;
  #rescanTimer: NodeJS.Timeout | undefined;
  #liftTimer: NodeJS.Timeout | undefined;
  #clockTimer: NodeJS.Timeout | undefined;
  #clockGuard: ClockGuard | undefined;
  #lifting: Promise<void> | undefined;
  #remotes: RemoteContext[] = [];
  #stopping = false;
  #exclusiveTail: Promise<unknown> = Promise.resolve();

  constructor(options: DaemonOptions) {
    this.#config = options.config;
    this.#log = options.log;
    this.#clock = options.clock ?? systemClock;
    this.#attributes = options.attributes ?? new ChattrAdapter();
    this.#procStatus = options.procStatus;
    this.#watch = options.watch ?? true;
    this.#healthCheckEveryMs = options.healthCheckEveryMs ?? HEALTH_CHECK_MS;
  }

  // Every check that can fail runs before anything watches or locks: a remote that fails them stops the daemon.
  async start(): Promise<void> {
    const log = this.#log;
    const started = this.#clock.now();
    this.#startedAt = new Date(started).toISOString();
    assertCapabilities(this.#procStatus);
    for (const remote of this.#config.remotes) this.#remotes.push(await this.#prepareRemote(remote));

    const scheduler = new ProtectionScheduler({
      // A json that does not parse on a plain remote is being written: only a very long silence makes it complete.
      reconcile: async (folder, full) =>
        this.#unavailable.has(folder.remote)
          ? { requests: [], refusals: [], provable: [] }
          : reconcileFolder(folder, {
              now: this.#clock.now(),
              jsonSettleMs: settleTimeFor(folder.remote.encrypted, this.#config.jsonSettleMs),
              proven: this.#proven.get(folder.remote),
              full,
            }),
      proven: (folder) => this.#proven.get(folder.remote),
      lock: (requests) =>
        this.#exclusive(() => lockUnits(requests, this.#attributes, this.#clock, log.child({ module: 'protect' }))),
      clock: this.#clock,
      log: log.child({ module: 'protect' }),
    });
    this.#scheduler = scheduler;

    // Counted from here: the watchers' first listings already enqueue folders, and may lock backups before the rescan.
    const before = scheduler.counters.backupsLocked;
    for (const remote of this.#remotes) {
      if (this.#stopping) return;
      await this.#startWatcher(remote);
    }
    // Catch-up is the same reconcile as for an event, over every folder: backups written while the daemon was down get
    // locked here. It skips backups proven before the stop; the full proof that follows in the background does not.
    await this.#rescan('event');
    await scheduler.idle();
    // A SIGTERM during start-up stops the daemon; nothing may be started after that.
    if (this.#stopping) return;
    log.info(
      {
        remotes: this.#remotes.map((r) => r.id),
        backupsLocked: scheduler.counters.backupsLocked - before,
        startupMs: this.#clock.now() - started,
        version: VERSION,
      },
      `protecting ${this.#remotes.length} remote${this.#remotes.length === 1 ? '' : 's'}; start-up catch-up locked ${scheduler.counters.backupsLocked - before} backup(s)`,
    );
    this.#fullProof('after start-up');
    this.#rescanTimer = setInterval(
      () => this.#fullProof('periodic rescan'),
      Math.min(MAX_TIMER_MS, this.#config.rescanEveryMs),
    );
    this.#healthTimer = setInterval(() => {
      this.#track(this.#checkHealth().catch((err: unknown) => log.error({ err }, 'remote health check failed')));
    }, this.#healthCheckEveryMs);
    const guard = new ClockGuard(
      this.#config.indexPath,
      this.#clock,
      this.#config.maxClockJumpMs,
      log.child({ module: 'clock' }),
    );
    this.#clockGuard = guard;
    // Checked often, so a jump and a jump back between two lift passes are still seen.
    this.#clockTimer = setInterval(() => {
      this.#track(guard.check().catch((err: unknown) => log.error({ err }, 'clock check failed')));
    }, CLOCK_CHECK_MS);
    await this.#liftPass();
    // A SIGTERM during that first pass: stop() has run, and no timer may be armed after it (it would keep the process alive).
    if (this.#stopping) return;
    await this.#writeStatus().catch((err: unknown) =>
      log.error({ err }, 'could not write status.json or the metrics file'),
    );
    if (this.#stopping) return;
    this.#liftTimer = setInterval(() => void this.#liftPass(), Math.min(MAX_TIMER_MS, this.#config.liftEveryMs));
  }

  async #restartWatcher(remote: RemoteContext): Promise<void> {
    const old = this.#watchers.get(remote);
    this.#watchers.delete(remote);
    await old?.close();
    this.#rootDevices.set(remote, (await stat(remote.root)).dev);
    await this.#startWatcher(remote);
  }

  #track(work: Promise<unknown>): void {
    this.#inFlight.add(work);
    void work.finally(() => this.#inFlight.delete(work));
  }

  async #startWatcher(remote: RemoteContext): Promise<void> {
    if (!this.#watch) return;
    const watcher = new RemoteWatcher(remote.root, this.#log.child({ module: 'watcher', remote: remote.id }), (event) =>
      this.#onWatchEvent(remote, event),
    );
    this.#watchers.set(remote, watcher);
    await watcher.start();
  }

  // A remote that goes away (unmounted export, failed disk) pauses its protection, loudly, and nothing is written
  // where it was; when it is back, its watches are set up again and a rescan catches up what was written meanwhile.
  async #checkHealth(): Promise<void> {
    try {
      for (const remote of this.#remotes) {
        if (this.#stopping) return;
        await this.#checkRemoteHealth(remote).catch((err: unknown) =>
          this.#log.error({ err, remote: remote.id }, `health check of remote ${remote.id} failed`),
        );
      }
    } finally {
      // The heartbeat goes on even when a check failed: status must not call a running daemon dead.
      if (!this.#stopping) await this.#writeStatus();
      if (!this.#stopping && performance.now() - this.#provenSavedAt >= PROVEN_SAVE_MS) await this.#saveProven();
    }
  }

  async #checkRemoteHealth(remote: RemoteContext): Promise<void> {
    const problem = await remoteHealthProblem(remote.root, this.#attributes);
    const log = this.#log.child({ remote: remote.id });
    if (problem !== undefined && !this.#unavailable.has(remote)) {
      this.#unavailable.set(remote, { problem, since: new Date(this.#clock.now()).toISOString() });
      log.error(
        { problem },
        `remote ${remote.id} is unavailable: ${problem}. Its protection is paused and nothing is written there; checking again every ${Math.round(this.#healthCheckEveryMs / 1000)} s`,
      );
      const watcher = this.#watchers.get(remote);
      this.#watchers.delete(remote);
      await watcher?.close();
    } else if (problem === undefined && this.#unavailable.has(remote)) {
      this.#unavailable.delete(remote);
      log.warn(`remote ${remote.id} is back; catching up on what was written while it was away`);
      await this.#restartWatcher(remote);
      await this.#rescanRemote(remote, 'event', 'scan');
    } else if (problem === undefined && (await stat(remote.root)).dev !== this.#rootDevices.get(remote)) {
      log.warn(
        `remote ${remote.id} is another mount of its filesystem than before (remounted?); watching it again and catching up`,
      );
      await this.#restartWatcher(remote);
      await this.#rescanRemote(remote, 'event', 'scan');
    }
  }

  async #writeStatus(): Promise<void> {
    const clock = await readClockState(this.#config.indexPath);
    const counters = this.#scheduler?.counters;
    await writeDaemonStatus(this.#config.indexPath, {
      version: 1,
      daemonVersion: VERSION,
      pid: process.pid,
      startedAt: this.#startedAt,
      heartbeat: new Date(this.#clock.now()).toISOString(),
      remotes: this.#remotes.map((r) => {
        const away = this.#unavailable.get(r);
        const lastLift = this.#lastLift.get(r);
        return {
          id: r.id,
          root: r.root,
          healthy: away === undefined,
          ...(away ? { problem: away.problem, unhealthySince: away.since } : {}),
          ...(lastLift ? { lastLift } : {}),
        };
      }),
      lifting: clock.frozen === undefined ? { frozen: false } : { frozen: true, reason: clock.frozen.reason },
      ...(this.#scheduler?.lastLock ? { lastLock: this.#scheduler.lastLock } : {}),
      errors: counters === undefined ? 0 : counters.lockFailures + counters.indexFailures + counters.reconcileErrors,
      securityWarnings: counters?.refusals ?? 0,
      watchedFolders: [...this.#watchers.values()].reduce((n, w) => n + w.watchedFolders(), 0),
    });
    if (this.#config.metricsFile !== undefined) {
      const scheduler = this.#scheduler;
      await writeMetricsFile(
        this.#config.metricsFile,
        renderMetrics({
          version: VERSION,
          heartbeatMs: this.#clock.now(),
          liftingFrozen: clock.frozen !== undefined,
          lockFailuresTotal: counters?.lockFailures ?? 0,
          indexFailuresTotal: counters?.indexFailures ?? 0,
          securityWarningsTotal: counters?.refusals ?? 0,
          pendingRechecks: scheduler?.pendingRechecks() ?? 0,
          coverageGaps: scheduler?.coverageGaps() ?? 0,
          lastSuccessfulLockMs: scheduler?.lastSuccessfulLockAt,
          lastReconcileMs: scheduler?.lastReconcileAt,
          remotes: this.#remotes.map((r) => {
            const totals = this.#liftTotals.get(r);
            return {
              id: r.id,
              healthy: !this.#unavailable.has(r),
              protectedUnits: totals?.kept,
              liftFailuresTotal: totals?.failures ?? 0,
              lastSuccessfulLiftMs: totals?.lastSuccessMs,
            };
          }),
        }),
      );
    }
  }

  // Locking and lifting never interleave: a lift must not unlock a unit while a lock batch records its identity.
  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#exclusiveTail.then(work, work);
    this.#exclusiveTail = run.catch(() => undefined);
    return run;
  }

  // One lift pass over every remote; a pass still running when the next is due is not doubled.
  #liftPass(): Promise<void> {
    this.#lifting ??= (async () => {
      const verdict = await this.#clockGuard?.check().catch((err: unknown) => ({
        frozen: true as const,
        reason: `the clock state cannot be kept: ${(err as Error).message}`,
      }));
      if (verdict?.frozen === true) {
        this.#log.error(
          { module: 'lift', reason: verdict.reason },
          `lift pass skipped: lifting is frozen (${verdict.reason}); run \`xo-immutable-backups lift --accept-clock\` once the clock is right`,
        );
        return;
      }
      for (const remote of this.#remotes) {
        if (this.#stopping) return;
        const log = this.#log.child({ module: 'lift', remote: remote.id });
        try {
          const report = await this.#exclusive(() =>
            liftRemote(remote, this.#attributes, { now: this.#clock.now(), dryRun: false, all: false }),
          );
          logLiftReport(report, log);
          this.#lastLift.set(remote, {
            at: new Date(this.#clock.now()).toISOString(),
            unlocked: report.unlocked.length,
            failed: report.failed.length,
            suspicious: report.suspicious.length,
          });
          const totals = this.#liftTotals.get(remote) ?? { failures: 0, kept: 0 };
          const failures = report.failed.length + report.suspicious.length;
          this.#liftTotals.set(remote, {
            failures: totals.failures + failures,
            kept: report.kept,
            lastSuccessMs: failures === 0 ? this.#clock.now() : totals.lastSuccessMs,
          });
        } catch (err) {
          log.error(
            { err },
            `lift pass on remote ${remote.id} failed; it runs again in ${Math.round(this.#config.liftEveryMs / 60_000)} min`,
          );
        }
      }
    })().finally(() => {
      this.#lifting = undefined;
    });
    return this.#lifting;
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#rescanTimer !== undefined) clearInterval(this.#rescanTimer);
    this.#rescanTimer = undefined;
    if (this.#liftTimer !== undefined) clearInterval(this.#liftTimer);
    this.#liftTimer = undefined;
    if (this.#clockTimer !== undefined) clearInterval(this.#clockTimer);
    this.#clockTimer = undefined;
    if (this.#healthTimer !== undefined) clearInterval(this.#healthTimer);
    this.#healthTimer = undefined;
    // A lift pass in flight finishes its batch: unlock-then-forget never stops between the two.
    await this.#lifting;
    await Promise.all(this.#inFlight);
    await Promise.all([...this.#watchers.values()].map((w) => w.close()));
    this.#watchers.clear();
    await this.#scheduler?.stop();
    await this.#saveProven();
  }

  async #rescan(urgency: Urgency): Promise<void> {
    for (const remote of this.#remotes) if (!this.#unavailable.has(remote)) await this.#rescanRemote(remote, urgency);
  }

  // 'event' then 'scan' on the same folder: a full proof, right away.
  async #rescanRemote(remote: RemoteContext, ...urgencies: Urgency[]): Promise<void> {
    const leaves = await findLeafFolders(remote.root);
    this.#watchers.get(remote)?.adopt(leaves);
    for (const leaf of leaves) for (const urgency of urgencies) this.#scheduler?.enqueue({ remote, ...leaf }, urgency);
  }

  // Every retained backup looked at again, proven or not, behind whatever events bring: catches a unit unlocked by
  // hand behind an untouched json. Only the listing is tracked: stop() does not wait for the proof to finish.
  #fullProof(why: string): void {
    const started = this.#clock.now();
    const listing = this.#rescan('scan');
    this.#track(listing.catch((err: unknown) => this.#log.error({ err }, `${why}: listing the remotes failed`)));
    void listing
      .then(() => this.#scheduler?.idle())
      .then(() => {
        if (!this.#stopping)
          this.#log.info(
            { ms: this.#clock.now() - started, proven: [...this.#proven.values()].reduce((n, p) => n + p.size, 0) },
            `full proof (${why}) done: every retained backup was checked`,
          );
      })
      .catch(() => undefined);
  }

  async #saveProven(): Promise<void> {
    this.#provenSavedAt = performance.now();
    for (const [remote, proven] of this.#proven) {
      if (!proven.takeChanged()) continue;
      await saveProven(remote.index.folder, proven).catch((err: unknown) => {
        proven.markChanged();
        this.#log.warn(
          { err, remote: remote.id },
          'could not save which backups are proven locked; tried again in a minute (a start-up meanwhile looks at every backup again)',
        );
      });
    }
  }

  #onWatchEvent(remote: RemoteContext, event: WatchEvent): void {
    const scheduler = this.#scheduler;
    if (scheduler === undefined) return;
    if (event.type === 'leaf-removed') {
      scheduler.forget(event.path);
      this.#proven.get(remote)?.forgetFolder(event.path);
    } else scheduler.enqueue({ remote, ...event.leaf } satisfies LeafFolder);
  }

  async #prepareRemote(remote: RemoteConfig): Promise<RemoteContext> {
    const log = this.#log.child({ remote: remote.id });
    const realRoot = await resolveRemoteRoot(remote);
    const realIndex = await realpathOfNearest(this.#config.indexPath);
    if (isInside(realIndex, realRoot)) {
      throw new AppError(
        'CONFIG_INVALID',
        `indexPath ${this.#config.indexPath} lies inside remote "${remote.id}" (${realRoot}) once links are resolved`,
        {
          value: this.#config.indexPath,
          hint: 'the remote is written by the party the index protects against: move indexPath outside every remote',
        },
      );
    }
    const index = new IndexStore(this.#config.indexPath, remote.id);
    // A remote protected before always has its immutability.json: without it, this is the empty folder of an unmounted
    // remote, and nothing must be written there.
    const days = await index.listDays();
    if (days.length > 0 && !existsSync(path.join(remote.root, IMMUTABILITY_FILE))) {
      throw new AppError(
        'REMOTE_NOT_FOUND',
        `Remote "${remote.id}": ${remote.root} has no ${IMMUTABILITY_FILE}, yet the index holds entries for it (${days.length} day(s)): it looks unmounted`,
        {
          value: remote.root,
          hint: `mount the remote; if it really is a new, empty remote, move ${index.folder} away first`,
        },
      );
    }
    await selfTestRemote(remote.root, this.#attributes);
    await index.open();
    try {
      await writeImmutabilityFile(
        remote.root,
        immutabilityStatus(remote.immutabilityDurationMs, this.#clock.now(), VERSION),
        this.#attributes,
      );
    } catch (error) {
      throw new AppError(
        'STATUS_FILE_FAILED',
        `Remote "${remote.id}": cannot write and lock ${path.join(remote.root, 'immutability.json')}: ${(error as Error).message}`,
        {
          value: remote.root,
          hint: 'check that the remote is mounted read-write and that nothing but this daemon manages immutability.json',
          cause: error,
        },
      );
    }
    log.info(
      { root: remote.root, immutabilityDurationMs: remote.immutabilityDurationMs, index: index.folder },
      `remote ${remote.id} passed its start-up checks`,
    );
    const context: RemoteContext = {
      id: remote.id,
      root: remote.root,
      realRoot,
      durationMs: remote.immutabilityDurationMs,
      index,
      encrypted: await isEncryptedRemote(remote.root),
    };
    this.#rootDevices.set(context, (await stat(realRoot)).dev);
    this.#proven.set(
      context,
      await loadProven(index.folder).catch((err: unknown) => {
        log.warn(
          { err },
          'could not read which backups were proven locked; the start-up catch-up looks at every backup',
        );
        return new ProvenBackups();
      }),
    );
    if (remote.rebuildIndexOnStart) {
      // Before catch-up and lift, so that units the index lost track of are lifted when their datetime says so.
      const report = await rebuildIndex(context, this.#attributes, {
        importFrom: [this.#config.indexPath],
        now: this.#clock.now(),
      });
      log.info(
        {
          indexed: report.indexed.length,
          imported: report.imported,
          undated: report.undated,
          foldersScanned: report.foldersScanned,
        },
        `rebuilt the index of remote ${remote.id}: ${report.indexed.length} unit(s) had no entry`,
      );
      for (const undated of report.undated)
        log.warn(
          { path: undated },
          `immutable unit ${undated} has no datetime in its name or an alias; not indexed, lift it by hand when it is no longer needed`,
        );
    }
    return context;
  }
}
