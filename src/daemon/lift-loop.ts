import type { AttributesAdapter } from '../attributes/adapter.js';
import type { Clock } from '../clock.js';
import { ClockGuard } from '../clockguard/guard.js';
import type { TakeTurns } from '../concurrency.js';
import type { Config } from '../config/schema.js';
import type { RemoteContext } from '../context/remote-context.js';
import { liftRemote } from '../lift/apply.js';
import { type LiftReport } from '../lift/report.js';
import { logLiftReport } from '../lift/report.js';
import type { Logger } from '../log/logger.js';
import type { RemotePauses } from './pauses.js';
import { Periodic } from './periodic.js';
import type { RemoteSet } from './remotes.js';
import type { Service } from './service.js';

// Checked often, so a jump and a jump back between two lift passes are still seen.
const CLOCK_CHECK_MS = 60_000;

export interface LastLift {
  at: string;
  unlocked: number;
  failed: number;
  suspicious: number;
}

export interface LiftTotals {
  failures: number;
  lastSuccessMs?: number;
}

export interface LiftLoopDeps {
  config: Config;
  remotes: RemoteSet;
  attributes: AttributesAdapter;
  clock: Clock;
  log: Logger;
  turns: TakeTurns;
  pauses: RemotePauses;
}

// Unlocks what has expired: one pass at start, then every liftEvery, unless the clock guard has frozen lifting. A remote
// paused for a fault (gone away, its key file refused) is skipped: the daemon cannot read it truthfully (a refused key
// hides its chains, and no reconcile re-dates what newer backups claim), so the index alone does not unlock it.
export class LiftLoop implements Service {
  readonly name = 'lift';
  readonly #deps: LiftLoopDeps;
  readonly #guard: ClockGuard;
  readonly #passes: Periodic;
  readonly #clockChecks: Periodic;
  readonly #lastLift = new Map<RemoteContext, LastLift>();
  readonly #totals = new Map<RemoteContext, LiftTotals>();
  // Why the last pass skipped a remote, while it is paused.
  readonly #skipped = new Map<RemoteContext, string>();

  constructor(deps: LiftLoopDeps) {
    const { config, clock, log } = deps;
    this.#deps = deps;
    this.#guard = new ClockGuard(config.indexPath, clock, config.maxClockJumpMs, log.child({ module: 'clock' }));
    this.#passes = new Periodic(
      config.liftEveryMs,
      () => this.#pass(),
      () => undefined,
    );
    this.#clockChecks = new Periodic(
      CLOCK_CHECK_MS,
      async () => void (await this.#guard.check()),
      (err: unknown) => log.error({ err }, 'clock check failed'),
    );
  }

  lastLift(remote: RemoteContext): LastLift | undefined {
    return this.#lastLift.get(remote);
  }

  totals(remote: RemoteContext): LiftTotals | undefined {
    return this.#totals.get(remote);
  }

  // Why lifting skips the remote now (status), or undefined.
  skipped(remote: RemoteContext): string | undefined {
    return this.#skipped.get(remote);
  }

  async start(): Promise<void> {
    this.#clockChecks.arm();
    await this.#passes.runNow();
    this.#passes.arm();
  }

  // A pass in flight finishes its batch: unlock-then-forget never stops between the two.
  async stop(): Promise<void> {
    await this.#clockChecks.stop();
    await this.#passes.stop();
  }

  async #pass(): Promise<void> {
    const verdict = await this.#guard.check().catch((err: unknown) => ({
      frozen: true as const,
      reason: `the clock state cannot be kept: ${(err as Error).message}`,
    }));
    if (verdict.frozen) {
      this.#deps.log.error(
        { module: 'lift', reason: verdict.reason },
        `lift pass skipped: lifting is frozen (${verdict.reason}); ` +
          'run `xo-immutable-backups lift --accept-clock` once the clock is right',
      );
      return;
    }
    for (const remote of this.#deps.remotes.list) {
      if (this.#passes.stopped) return;
      if (!this.#skipsPaused(remote)) await this.#liftOne(remote, verdict.wall);
    }
  }

  // A new remote (waiting for XO) has nothing indexed to lift; any other pause is a fault. Said once per pause.
  #skipsPaused(remote: RemoteContext): boolean {
    const pause = this.#deps.pauses.why(remote);
    const log = this.#deps.log.child({ module: 'lift', remote: remote.id });
    if (pause === undefined || pause.waitingForXo) {
      if (this.#skipped.delete(remote)) log.info(`remote ${remote.id} is no longer paused: lifting it resumes`);
      return false;
    }
    const reason = `remote ${remote.id} is paused (${pause.problem}): nothing of it is unlocked until it is read again`;
    if (this.#skipped.get(remote) !== reason) log.warn({ problem: pause.problem }, `lift skipped: ${reason}`);
    this.#skipped.set(remote, reason);
    return true;
  }

  // `now`: the wall time the guard judged for this pass.
  async #liftOne(remote: RemoteContext, now: number): Promise<void> {
    const { attributes, turns, config } = this.#deps;
    const log = this.#deps.log.child({ module: 'lift', remote: remote.id });
    try {
      const options = { now, dryRun: false, all: false };
      const report = await turns.run(() => liftRemote(remote, attributes, options));
      logLiftReport(report, log);
      this.#record(remote, report);
    } catch (err) {
      const minutes = Math.round(config.liftEveryMs / 60_000);
      log.error({ err }, `lift pass on remote ${remote.id} failed; it runs again in ${minutes} min`);
    }
  }

  #record(remote: RemoteContext, report: LiftReport): void {
    const now = this.#deps.clock.now();
    const { unlocked, failed, suspicious } = report;
    this.#lastLift.set(remote, {
      at: new Date(now).toISOString(),
      unlocked: unlocked.length,
      failed: failed.length,
      suspicious: suspicious.length,
    });
    const totals = this.#totals.get(remote) ?? { failures: 0 };
    const failures = failed.length + suspicious.length;
    this.#totals.set(remote, {
      failures: totals.failures + failures,
      lastSuccessMs: failures === 0 ? now : totals.lastSuccessMs,
    });
  }
}
