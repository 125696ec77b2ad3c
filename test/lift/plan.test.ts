import { describe, expect, it } from 'vitest';
import { pendingEntry, lockedEntry, type IndexEntry } from '../../src/index/entry.js';
import type { StoredEntry } from '../../src/index/store.js';
import { liftableDays, planLift } from '../../src/lift/plan.js';
import { utcDay } from '../../src/remote/datetime.js';

const DAY = 86_400_000;
const WEEK = 7 * DAY;
const identity = { dev: '1', ino: '2', size: '3', mtimeNs: '4', ctimeNs: '5' };

function stored(unit: string, backupInstant: number, extra: Partial<IndexEntry> = {}): StoredEntry {
  const entry = {
    ...lockedEntry(
      pendingEntry(
        { remote: 'r', path: unit, kind: 'vm', recursive: false, backup: '/r/b.json', backupInstant },
        backupInstant,
      ),
      identity,
      backupInstant,
    ),
    ...extra,
  };
  return { day: utcDay(backupInstant), name: `${unit}@${backupInstant}`, entry, text: JSON.stringify(entry) };
}

const paths = (plan: ReturnType<typeof planLift>): string[] => plan.unlock.map((u) => u.path);

describe('planLift', () => {
  const t = Date.UTC(2026, 10, 15, 23, 59, 59);

  it('never unlocks before the duration has passed since the backup datetime, to the millisecond', () => {
    const entries = [stored('/r/a', t)];
    expect(paths(planLift(entries, t + WEEK - 1, WEEK))).toEqual([]);
    expect(paths(planLift(entries, t + WEEK, WEEK))).toEqual(['/r/a']);
  });

  it('keeps a whole day bucket locked one day before it expires, and releases it once the last backup of the day has aged', () => {
    const morning = Date.UTC(2026, 10, 15, 0, 0, 0);
    const evening = Date.UTC(2026, 10, 15, 23, 59, 59);
    const entries = [stored('/r/morning', morning), stored('/r/evening', evening)];
    expect(new Set(entries.map((e) => e.day))).toEqual(new Set(['2026-11-15']));
    expect(paths(planLift(entries, morning + WEEK - DAY, WEEK))).toEqual([]);
    expect(paths(planLift(entries, Date.UTC(2026, 10, 22, 12), WEEK))).toEqual(['/r/morning']);
    expect(paths(planLift(entries, Date.UTC(2026, 10, 23, 0, 0, 0), WEEK))).toEqual(['/r/morning', '/r/evening']);
  });

  it('lets the newest entry for a path govern: an older bucket alone does not release a unit a newer backup still needs', () => {
    const entries = [stored('/r/data/old.vhd', t - 10 * DAY), stored('/r/data/old.vhd', t)];
    const plan = planLift(entries, t + 3 * DAY, WEEK);
    expect(plan.unlock).toEqual([]);
    expect(plan.kept).toBe(1);
    const later = planLift(entries, t + WEEK, WEEK);
    expect(later.unlock).toHaveLength(1);
    // Both entries go once the unit is unlocked.
    expect(later.unlock[0]?.entries).toHaveLength(2);
    expect(later.unlock[0]?.day).toBe(utcDay(t));
  });

  it('applies a changed duration on the next pass: longer keeps, shorter releases', () => {
    const entries = [stored('/r/a', t)];
    const now = t + 10 * DAY;
    expect(paths(planLift(entries, now, WEEK))).toEqual(['/r/a']);
    expect(paths(planLift(entries, now, 14 * DAY))).toEqual([]);
    expect(paths(planLift(entries, t + 2 * DAY, DAY))).toEqual(['/r/a']);
  });

  it('keeps a unit whose own name carries a datetime still inside the window, whatever bucket its entry sits in', () => {
    const misfiled = stored('/r/vm/20261120T000000Z.json', Date.UTC(2026, 10, 1));
    expect(paths(planLift([misfiled], Date.UTC(2026, 10, 20) + 3 * DAY, WEEK))).toEqual([]);
    expect(paths(planLift([misfiled], Date.UTC(2026, 10, 20) + WEEK, WEEK))).toEqual(['/r/vm/20261120T000000Z.json']);
  });

  it('reports files that are not entries, and unlocks everything with all', () => {
    const legacy: StoredEntry = { day: '2026-11-01', name: 'x', entry: undefined, text: '/r/old/path' };
    const plan = planLift([legacy, stored('/r/a', t)], t, WEEK, true);
    expect(paths(plan)).toEqual(['/r/a']);
    expect(plan.unreadable).toEqual([legacy]);
  });

  it('keeps a unit locked when another entry for it cannot be read: it may belong to a newer backup', () => {
    const good = stored('/r/data/a.vhd', t);
    const broken = { ...stored('/r/data/a.vhd', t + 19 * DAY), name: 'broken' };
    broken.entry = { ...broken.entry!, backupDatetime: 'garbage' };
    const legacy: StoredEntry = { day: '2026-11-30', name: 'legacy', entry: undefined, text: '/r/data/b.vhd\n' };
    const plan = planLift([good, broken, stored('/r/data/b.vhd', t), legacy], t + 8 * DAY, WEEK);
    expect(paths(plan)).toEqual([]);
    expect(plan.unreadable.map((u) => u.name)).toEqual(['broken', 'legacy']);
  });

  it('reads only the buckets that can hold an expired entry: those starting at or before now - duration', () => {
    const days = ['2026-11-16', '2026-11-14', '2026-11-15'];
    const now = Date.UTC(2026, 10, 22);
    expect(liftableDays(days, now, WEEK)).toEqual(['2026-11-14', '2026-11-15']);
    expect(liftableDays(days, now - 1, WEEK)).toEqual(['2026-11-14']);
    expect(liftableDays(days, now, WEEK, true)).toEqual(['2026-11-14', '2026-11-15', '2026-11-16']);
  });
});
