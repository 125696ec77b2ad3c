import path from 'node:path';
import type { Identity } from '../remote/identity.js';
import { futureNameOf } from '../index/entry.js';
import type { StoredEntry } from '../index/store.js';
import { parseBackupDatetime } from '../remote/datetime.js';
import { isInWindow } from '../remote/model.js';
import type { BackupKind } from '../remote/patterns.js';

// One unit the lift would unlock, with every entry that names it (all are forgotten once it is unlocked).
export interface LiftCandidate {
  path: string;
  kind: BackupKind;
  recursive: boolean;
  // The newest backup that references the unit: its window is the one that counts.
  governingInstant: number;
  // The day bucket of the governing entry, for reporting per day.
  day: string;
  entries: { day: string; name: string }[];
  // As recorded at lock time by the newest entry that recorded one; pending entries have none.
  identity: Identity | undefined;
  // The governing backup (its json, or its date folder).
  backup: string;
  // The governing backup was named in the future and dated by its arrival: the instant its name says.
  futureName?: number;
}

export interface LiftPlan {
  unlock: LiftCandidate[];
  // Units whose window has not passed: left locked.
  kept: number;
  // Files in the index that are not entries of ours (damaged, or the prior art's): left alone and reported.
  unreadable: StoredEntry[];
}

// Groups the entries by path: each unit with the newest backup that references it. Paths named by an entry whose
// datetime cannot be read are set apart as blocked (they may belong to a newer backup).
export function groupByPath(stored: readonly StoredEntry[]): {
  units: LiftCandidate[];
  unreadable: StoredEntry[];
  blocked: Set<string>;
} {
  const byPath = new Map<string, LiftCandidate>();
  const unreadable: StoredEntry[] = [];
  const blocked = new Set<string>();
  for (const item of stored) {
    const { entry } = item;
    const instant = entry === undefined ? Number.NaN : Date.parse(entry.backupDatetime);
    if (entry === undefined || Number.isNaN(instant)) {
      unreadable.push(item);
      const named = entry?.path ?? bareLegacyPath(item.text);
      if (named !== undefined) blocked.add(named);
      continue;
    }
    const candidate = byPath.get(entry.path);
    if (candidate === undefined) {
      byPath.set(entry.path, {
        path: entry.path,
        kind: entry.kind,
        recursive: entry.recursive,
        governingInstant: instant,
        day: item.day,
        entries: [{ day: item.day, name: item.name }],
        identity: entry.identity,
        backup: entry.backup,
        futureName: futureNameOf(entry),
      });
      continue;
    }
    candidate.entries.push({ day: item.day, name: item.name });
    candidate.recursive ||= entry.recursive;
    if (instant >= candidate.governingInstant) {
      candidate.governingInstant = instant;
      candidate.day = item.day;
      candidate.identity = entry.identity ?? candidate.identity;
      candidate.backup = entry.backup;
      candidate.futureName = futureNameOf(entry);
    }
  }
  return { units: [...byPath.values()], unreadable, blocked };
}

// maxClockJump's default: a name further ahead than this is in the future (the reconcile judges it by the configured
// maxClockJump; only entries it dated by arrival are judged here).
const FUTURE_MARGIN_MS = 86_400_000;

// Pure: which units expire now: the newest backup referencing one, and its own name's datetime, are both past the
// window ("never early"). `alsoBlocked`: paths named by unreadable entries in other buckets.
export function planLift(
  stored: readonly StoredEntry[],
  now: number,
  durationMs: number,
  all = false,
  alsoBlocked: ReadonlySet<string> = new Set(),
): LiftPlan {
  const { units, unreadable, blocked } = groupByPath(stored);
  const unlock: LiftCandidate[] = [];
  let kept = 0;
  for (const candidate of units) {
    if (
      all ||
      (!blocked.has(candidate.path) && !alsoBlocked.has(candidate.path) && isExpired(candidate, now, durationMs))
    )
      unlock.push(candidate);
    else kept++;
  }
  unlock.sort((a, b) => a.governingInstant - b.governingInstant || a.path.localeCompare(b.path));
  return { unlock, kept, unreadable };
}

// Pure: the day buckets that can hold an expired entry, oldest first. An entry's bucket is the UTC day of its backup
// datetime, so a bucket that starts after now - duration holds nothing expired and is never read.
export function liftableDays(days: readonly string[], now: number, durationMs: number, all = false): string[] {
  return days.filter((day) => all || Date.parse(`${day}T00:00:00.000Z`) <= now - durationMs).sort();
}

// Paths named by entries that cannot be read: they may belong to a newer backup, so they stay locked.
export function blockedPaths(unreadable: readonly StoredEntry[]): string[] {
  return unreadable.flatMap((item) => {
    const named = item.entry?.path ?? bareLegacyPath(item.text);
    return named === undefined ? [] : [named];
  });
}

function isExpired(candidate: LiftCandidate, now: number, durationMs: number): boolean {
  if (isInWindow(candidate.governingInstant, now, durationMs)) return false;
  const named = parseBackupDatetime(path.basename(candidate.path));
  // A unit named in the future has the window of its arrival, recorded by identity (lift/candidate.ts checks it),
  // while its name is still ahead; once the clock reaches the name (it was behind, and was set right), it counts again.
  if (named !== undefined && named === candidate.futureName && named > now + FUTURE_MARGIN_MS) return true;
  return named === undefined || !isInWindow(named, now, durationMs);
}

// The prior art's entries hold nothing but the absolute path.
function bareLegacyPath(text: string): string | undefined {
  const trimmed = text.trim();
  return trimmed.startsWith('/') && !trimmed.includes('\n') ? trimmed : undefined;
}
