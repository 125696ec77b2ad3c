import type { Examined } from '../remote/read.js';

// maxClockJump's default (config/schema.ts).
const DEFAULT_MAX_CLOCK_JUMP_MS = 86_400_000;

// A backup named later than now + maxClockJump is a security warning, dated by its arrival, and claims only its own
// units (docs/security.md): a junk name in the year 9999 must not pin what it names.
export function isNamedInTheFuture(instant: number, options: { now: number; maxClockJumpMs?: number }): boolean {
  return instant > options.now + (options.maxClockJumpMs ?? DEFAULT_MAX_CLOCK_JUMP_MS);
}

export function futureWarning(datetime: string, arrival: number): string {
  return (
    `its datetime ${datetime} is later than now + maxClockJump: its own units are locked for the duration from ` +
    `its arrival (${new Date(arrival).toISOString()}), and it extends no other unit's window`
  );
}

// When a json (or metadata.json) reached the remote: its modification time, never later than its ctime (which no one
// but the kernel sets: a modification time set ahead on purpose does not count) nor now.
export function arrivalOf(examined: Examined, now: number): number {
  const ctimeMs = Number(BigInt(examined.identity.ctimeNs) / 1_000_000n);
  return Math.min(examined.mtimeMs, ctimeMs, now);
}
