import path from 'node:path';
import type { StoredEntry } from '../index/store.js';
import { groupByPath, type IndexedUnit } from '../index/units.js';
import { parseBackupDatetime } from '../remote/datetime.js';
import { isInWindow } from '../remote/model.js';

// In lift, a unit of the index (index/units.ts) is a candidate for unlocking.
export type LiftCandidate = IndexedUnit;

export interface LiftPlan {
  unlock: LiftCandidate[];
  // Units whose window has not passed: left locked.
  kept: number;
  // Files in the index that are not entries of ours (damaged, or the prior art's): left alone and reported.
  unreadable: StoredEntry[];
}

// maxClockJump's default: a name further ahead than this is in the future (the reconcile judges it by the configured
// maxClockJump; only entries it dated by arrival are judged here).
const FUTURE_MARGIN_MS = 86_400_000;

// Pure: which units expire now: the newest backup referencing one, and its own name's datetime, are both past the
// window ("never early"). `windowMs`: the duration + its slack (remote/model.ts windowMsOf). `alsoBlocked`: paths
// named by unreadable entries in other buckets.
export function planLift(
  stored: readonly StoredEntry[],
  now: number,
  windowMs: number,
  all = false,
  alsoBlocked: ReadonlySet<string> = new Set(),
): LiftPlan {
  const { units, unreadable, blocked } = groupByPath(stored);
  const unlock: LiftCandidate[] = [];
  let kept = 0;
  const named = namedInstants();
  for (const candidate of units) {
    if (
      all ||
      (!blocked.has(candidate.path) && !alsoBlocked.has(candidate.path) && isExpired(candidate, now, windowMs, named))
    )
      unlock.push(candidate);
    else kept++;
  }
  unlock.sort((a, b) => a.governingInstant - b.governingInstant || a.path.localeCompare(b.path));
  return { unlock, kept, unreadable };
}

// Pure: the day buckets that can hold an expired entry, oldest first. An entry's bucket is the UTC day its window
// counts from (its backup's datetime, or its arrival when later: protect/arrival.ts), so a bucket that starts after
// now - window holds nothing expired and is never read.
export function liftableDays(days: readonly string[], now: number, windowMs: number, all = false): string[] {
  return days.filter((day) => all || Date.parse(`${day}T00:00:00.000Z`) <= now - windowMs).sort();
}

// The datetime a unit's name stands for, parsed once a chunk per datetime: a backup's units share theirs (the parse
// reads a name's first 15 characters, "20261122T061500").
function namedInstants(): (unit: string) => number | undefined {
  const parsed = new Map<string, number | undefined>();
  return (unit) => {
    const name = unit.endsWith(path.sep) ? path.basename(unit) : unit.slice(unit.lastIndexOf(path.sep) + 1);
    const key = name.slice(0, DATETIME_LENGTH);
    if (parsed.has(key)) return parsed.get(key);
    const instant = parseBackupDatetime(key);
    parsed.set(key, instant);
    return instant;
  };
}

const DATETIME_LENGTH = '20261122T061500'.length;

function isExpired(
  candidate: LiftCandidate,
  now: number,
  windowMs: number,
  namedInstant: (unit: string) => number | undefined,
): boolean {
  if (isInWindow(candidate.governingInstant, now, windowMs)) return false;
  const named = namedInstant(candidate.path);
  // A unit named in the future has the window of its arrival, recorded by identity (lift/candidate.ts checks it),
  // while its name is still ahead; once the clock reaches the name (it was behind, and was set right), it counts again.
  if (named !== undefined && named === candidate.futureName && named > now + FUTURE_MARGIN_MS) return true;
  return named === undefined || !isInWindow(named, now, windowMs);
}
