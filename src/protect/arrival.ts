import type { WindowStart } from '../config/schema.js';
import { windowSlackMs } from '../remote/model.js';
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

// When a json (or metadata.json) was created on the remote: its birth time, which XO's rewrite in place after a merge
// keeps and no one but the kernel sets; where the filesystem keeps none, its ctime, which no one on the remote can set
// back either (its mtime can be: a backdated mirror would be dated by its old name and never locked). A ctime later
// than the creation (a rename, a rewrite) only makes the backup arrive later: a longer window.
export function bornOf(examined: Examined): number {
  const { birthtimeNs, ctimeNs } = examined.identity;
  const birth = birthtimeNs === undefined ? 0 : Number(BigInt(birthtimeNs) / 1_000_000n);
  return birth > 0 ? birth : Number(BigInt(ctimeNs) / 1_000_000n);
}

export interface WindowFacts {
  // The datetime the backup's name says.
  named: number;
  // The moment the daemon first found it complete, as recorded by its json's (or folder's) identity at its first lock.
  recorded: number | undefined;
  // When its json (or metadata.json) was created on the remote (bornOf).
  born: number;
  now: number;
  // The configured duration (not remote/model.ts windowMsOf): the slack is derived from it.
  durationMs: number;
  // When the daemon first watched the remote (index/windows.ts); undefined: no backup is taken as arriving now (a
  // command run by an admin, not the daemon).
  watchedSince: number | undefined;
  rule: WindowStart;
  maxClockJumpMs?: number;
}

export interface WindowStartOf {
  // What the window counts from: it ends at instant + windowMsOf(the duration).
  instant: number;
  // The arrival to record at its first lock; undefined when the window counts from the name alone.
  arrived?: number;
  namedInTheFuture: boolean;
}

// Pure: what a backup's window counts from. A backup with no arrival recorded arrives now if it was created after the
// daemon first watched the remote and less than a window ago: one created before (the first start), or unlocked at the
// end of its window (lift forgets its record), is dated by its name, so it is neither locked late nor locked again; so
// is one created later than now (the clock is behind: its birth says nothing). Named in the future: its arrival alone,
// whatever the rule (one not arriving now: its creation, never later than now). One arriving now within the slack of
// its name is dated by its name, with no arrival to record: its window ends at named + duration + slack, never before
// now + duration. A recorded arrival is always honoured.
export function windowStartOf(facts: WindowFacts): WindowStartOf {
  const namedInTheFuture = isNamedInTheFuture(facts.named, facts);
  if (!namedInTheFuture && facts.rule === 'name') return { instant: facts.named, namedInTheFuture };
  const arrived = facts.recorded ?? (isArrivingNow(facts) ? facts.now : undefined);
  if (
    !namedInTheFuture &&
    facts.recorded === undefined &&
    arrived !== undefined &&
    arrived <= facts.named + windowSlackMs(facts.durationMs)
  )
    return { instant: facts.named, namedInTheFuture };
  const base = namedInTheFuture ? Math.min(facts.born, facts.now) : facts.named;
  const instant = namedInTheFuture ? (arrived ?? base) : Math.max(base, arrived ?? base);
  return arrived === undefined ? { instant, namedInTheFuture } : { instant, arrived, namedInTheFuture };
}

// Pure: whether a backup could still be inside a window from its arrival, so its record is worth reading. An arrival
// is recorded only for a backup created less than a duration before it (isArrivingNow), so its window ends before
// born + 2 windows. Judged by the window (duration + slack), as lift is: reading a record too often costs a read,
// skipping one would shorten its window.
export function mayBeInWindow(named: number, born: number, now: number, windowMs: number): boolean {
  return named > now - windowMs || born > now - 2 * windowMs;
}

// By the configured duration, not the window: the slack lengthens windows, not what counts as a new arrival (a backup
// created more than a duration ago is dated by its name, as before).
function isArrivingNow({ watchedSince, born, now, durationMs }: WindowFacts): boolean {
  return watchedSince !== undefined && born > watchedSince && born > now - durationMs && born <= now;
}
