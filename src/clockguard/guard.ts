import type { Clock } from '../clock.js';
import type { Logger } from '../log/logger.js';
import {
  formatMs,
  judgeRecordedClock,
  judgeRunningClock,
  judgeStartClock,
  sameBootBaseline,
  type BootSample,
  type ClockReading,
  type ClockSample,
} from './judge.js';
import { freeze, readClockState, recordClock, unfreeze } from './state.js';

// Watches the wall clock for the daemon and keeps the verdict in the index's clock state, which `lift` reads too.
// Locking never stops for the clock; only lifting does.
export class ClockGuard {
  readonly #indexPath: string;
  readonly #clock: Clock;
  readonly #maxJumpMs: number;
  readonly #log: Logger;
  // Drift is measured from a baseline (the first start in this boot, or the last --accept-clock), not between two
  // checks: many small steps add up to one large jump. It is recorded with the boot id, so a restart within the same
  // boot goes on from it instead of starting afresh.
  #baseline: ClockSample | undefined;
  #wasFrozen = false;

  constructor(indexPath: string, clock: Clock, maxJumpMs: number, log: Logger) {
    this.#indexPath = indexPath;
    this.#clock = clock;
    this.#maxJumpMs = maxJumpMs;
    this.#log = log;
  }

  // Checks the clock, records the time, and says whether lifting may go on. `wall` is the time judged: a lift acts on
  // it, not on a later reading the guard has not seen (the clock may move while the state is read and written).
  async check(): Promise<{ frozen: false; wall: number } | { frozen: true; reason: string }> {
    const current = readClock(this.#clock);
    const { wall, monotonic } = current;
    const state = await readClockState(this.#indexPath);
    let reason: string | undefined;
    // An admin accepted the clock (the frozen file is gone): drift counts from now on.
    if (this.#wasFrozen && state.frozen === undefined) this.#baseline = undefined;
    if (this.#baseline === undefined) {
      const recorded = judgeStartClock(state, current, this.#maxJumpMs);
      if (!recorded.ok) reason = recorded.reason;
      else if (recorded.forwardGapMs !== undefined)
        this.#log.warn(
          { gapMs: recorded.forwardGapMs },
          `the clock moved ${formatMs(recorded.forwardGapMs)} forward since this index last recorded it ` +
            '(the server was off?); lifting goes on',
        );
      if (monotonic !== undefined) this.#baseline = sameBootBaseline(state.baseline, current) ?? { wall, monotonic };
    } else {
      // While running, the wall clock may not go back before a time already recorded either.
      const recorded = judgeRecordedClock(state.lastWall, wall, this.#maxJumpMs);
      if (!recorded.ok) reason = recorded.reason;
      if (monotonic !== undefined) {
        const running = judgeRunningClock(this.#baseline, { wall, monotonic }, this.#maxJumpMs);
        if (!running.ok) reason = running.reason;
      }
    }
    const frozen = state.frozen ?? (reason === undefined ? undefined : { since: new Date(wall).toISOString(), reason });
    if (frozen !== undefined && state.frozen === undefined) {
      await freeze(this.#indexPath, frozen);
      this.#log.error(
        { reason: frozen.reason },
        `lifting is frozen: ${frozen.reason}. Backups stay locked and new ones are still locked. ` +
          'Check the clock (timedatectl, NTP), then run `xo-immutable-backups lift --accept-clock`',
      );
    }
    // Never record a time earlier than one already recorded: a clock set back must not erase the evidence.
    await recordClock(this.#indexPath, Math.max(wall, state.lastWall ?? wall), bootSample(this.#baseline, current));
    this.#wasFrozen = frozen !== undefined;
    return frozen === undefined ? { frozen: false, wall } : { frozen: true, reason: frozen.reason };
  }
}

// `lift --accept-clock`: the admin has checked the clock; lifting resumes from the current time, which is also the
// new baseline for this boot.
export async function acceptClock(indexPath: string, clock: Clock): Promise<void> {
  const current = readClock(clock);
  const baseline = current.monotonic === undefined ? undefined : { wall: current.wall, monotonic: current.monotonic };
  await recordClock(indexPath, current.wall, bootSample(baseline, current));
  await unfreeze(indexPath);
}

// One reading for the guard and for `lift`: a boot id only counts with the monotonic clock it names.
export function readClock(clock: Clock): ClockReading {
  const monotonic = clock.monotonic?.();
  return { wall: clock.now(), monotonic, bootId: monotonic === undefined ? undefined : clock.bootId?.() };
}

function bootSample(baseline: ClockSample | undefined, current: ClockReading): BootSample | undefined {
  return baseline === undefined || current.bootId === undefined ? undefined : { ...baseline, bootId: current.bootId };
}
