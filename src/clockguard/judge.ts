// Pure rules of the clock guard (as Veeam's hardened repository guards against time attacks): a wall clock that jumps
// unlocks backups early, so any jump larger than `maxJumpMs` freezes lifting until an admin accepts the clock.

export interface ClockSample {
  wall: number;
  monotonic: number;
}

// A baseline read on a monotonic clock that counts from boot, with the boot it was read in: any process of that boot
// reads the same monotonic clock, so the baseline outlives the process that took it.
export interface BootSample extends ClockSample {
  bootId: string;
}

// What a process knows of now; monotonic and bootId are missing on clocks that cannot tell them.
export interface ClockReading {
  wall: number;
  monotonic?: number;
  bootId?: string;
}

export type ClockVerdict = { ok: true } | { ok: false; reason: string };

// While running: since the baseline, the wall clock must have moved as the monotonic clock did, within maxJumpMs.
export function judgeRunningClock(
  previous: ClockSample,
  current: ClockSample,
  maxJumpMs: number,
  during = 'while the daemon was running',
): ClockVerdict {
  const drift = current.wall - previous.wall - (current.monotonic - previous.monotonic);
  if (Math.abs(drift) <= maxJumpMs) return { ok: true };
  return {
    ok: false,
    reason: `the wall clock jumped ${drift > 0 ? 'forward' : 'backward'} by ${formatMs(Math.abs(drift))} (in all) ${during}`,
  };
}

// The baseline a process started in the same boot goes on from, or undefined (another boot, or one nobody can tell).
export function sameBootBaseline(baseline: BootSample | undefined, current: ClockReading): BootSample | undefined {
  if (baseline === undefined || current.bootId === undefined || current.monotonic === undefined) return undefined;
  return baseline.bootId === current.bootId ? baseline : undefined;
}

// At start (the daemon's, or `lift`'s): within the boot the recorded baseline was taken in, the monotonic clock never
// stopped, so a restart is judged as if the daemon had kept running and a forward jump freezes too (skewing NTP, then
// crashing the daemon, gains nothing). Only after a new boot, or with a state that names no boot, is a forward gap
// allowed (the server may have been off), and reported.
export function judgeStartClock(
  recorded: { lastWall?: number; baseline?: BootSample },
  current: ClockReading,
  maxJumpMs: number,
): ClockVerdict & { forwardGapMs?: number } {
  const verdict = judgeRecordedClock(recorded.lastWall, current.wall, maxJumpMs);
  const baseline = sameBootBaseline(recorded.baseline, current);
  if (!verdict.ok || baseline === undefined || current.monotonic === undefined) return verdict;
  return judgeRunningClock(
    baseline,
    { wall: current.wall, monotonic: current.monotonic },
    maxJumpMs,
    `since ${new Date(baseline.wall).toISOString()} within this boot (the daemon restarted in between)`,
  );
}

// Across restarts only the last wall time recorded is known: going backward past it is a clock problem; going forward
// is allowed (the server may have been off) and only reported.
export function judgeRecordedClock(
  lastRecordedWall: number | undefined,
  wall: number,
  maxJumpMs: number,
): ClockVerdict & { forwardGapMs?: number } {
  if (lastRecordedWall === undefined) return { ok: true };
  if (wall < lastRecordedWall - Math.min(maxJumpMs, 60_000)) {
    return {
      ok: false,
      reason:
        `the wall clock (${new Date(wall).toISOString()}) is earlier than ` +
        `the last time this index recorded (${new Date(lastRecordedWall).toISOString()})`,
    };
  }
  const gap = wall - lastRecordedWall;
  return gap > maxJumpMs ? { ok: true, forwardGapMs: gap } : { ok: true };
}

export function formatMs(ms: number): string {
  const hours = ms / 3_600_000;
  return hours >= 48
    ? `${(hours / 24).toFixed(1)} days`
    : hours >= 1
      ? `${hours.toFixed(1)} hours`
      : `${Math.round(ms / 1000)} s`;
}
