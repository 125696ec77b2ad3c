// Pure rules of the clock guard (as Veeam's hardened repository guards against time attacks): a wall clock that jumps
// unlocks backups early, so any jump larger than `maxJumpMs` freezes lifting until an admin accepts the clock.

export interface ClockSample {
  wall: number;
  monotonic: number;
}

export type ClockVerdict = { ok: true } | { ok: false; reason: string };

// While running: since the baseline, the wall clock must have moved as the monotonic clock did, within maxJumpMs.
export function judgeRunningClock(previous: ClockSample, current: ClockSample, maxJumpMs: number): ClockVerdict {
  const drift = current.wall - previous.wall - (current.monotonic - previous.monotonic);
  if (Math.abs(drift) <= maxJumpMs) return { ok: true };
  return {
    ok: false,
    reason:
      `the wall clock jumped ${drift > 0 ? 'forward' : 'backward'} by ${formatMs(Math.abs(drift))} (in all) ` +
      'while the daemon was running',
  };
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
