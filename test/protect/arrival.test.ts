import { describe, expect, it } from 'vitest';
import { bornOf, mayBeInWindow, windowStartOf, type WindowFacts } from '../../src/protect/arrival.js';
import { windowMsOf, windowSlackMs } from '../../src/remote/model.js';

const DAY = 86_400_000;
const WEEK = 7 * DAY;
const now = Date.UTC(2026, 11, 6, 12);
// The daemon has watched this remote for a month.
const base: WindowFacts = {
  named: now - DAY,
  recorded: undefined,
  born: now - 60_000,
  now,
  durationMs: WEEK,
  watchedSince: now - 30 * DAY,
  rule: 'arrival',
};

describe('windowStartOf', () => {
  it('counts a backup arriving now from now, whatever its name says (mirror, late transfer, catch-up)', () => {
    expect(windowStartOf({ ...base, named: now - 8 * DAY })).toEqual({
      instant: now,
      arrived: now,
      namedInTheFuture: false,
    });
    expect(windowStartOf({ ...base, named: now - 5 * 3_600_000 }).instant).toBe(now);
    // Written two days ago while the daemon was stopped, found now.
    expect(windowStartOf({ ...base, named: now - 2 * DAY, born: now - 2 * DAY }).instant).toBe(now);
  });

  it('keeps the arrival recorded at the first lock, and the name when it is later', () => {
    const recorded = now - 3 * DAY;
    expect(windowStartOf({ ...base, named: now - 8 * DAY, recorded }).instant).toBe(recorded);
    expect(windowStartOf({ ...base, named: now - DAY, recorded }).instant).toBe(now - DAY);
    expect(windowStartOf({ ...base, named: now - DAY, recorded }).arrived).toBe(recorded);
  });

  it('dates by its name what was created before the daemon first watched the remote (first start)', () => {
    const first = { ...base, watchedSince: now, born: now - 3 * DAY };
    expect(windowStartOf({ ...first, named: now - 8 * DAY })).toEqual({
      instant: now - 8 * DAY,
      namedInTheFuture: false,
    });
    expect(windowStartOf({ ...first, named: now - 3 * DAY }).instant).toBe(now - 3 * DAY);
  });

  it('never locks again a backup whose window from arrival is over (lift forgot its record)', () => {
    // Created 8 days ago, locked on arrival, unlocked a day ago: no record left.
    const start = windowStartOf({ ...base, named: now - 9 * DAY, born: now - 8 * DAY });
    expect(start).toEqual({ instant: now - 9 * DAY, namedInTheFuture: false });
    expect(start.instant + WEEK).toBeLessThan(now);
  });

  it('by name ("name"), counts from the name alone', () => {
    expect(windowStartOf({ ...base, rule: 'name', named: now - 8 * DAY })).toEqual({
      instant: now - 8 * DAY,
      namedInTheFuture: false,
    });
    expect(windowStartOf({ ...base, rule: 'name', recorded: now }).instant).toBe(now - DAY);
  });

  it('counts a backup named in the future from its arrival alone, under either rule', () => {
    const future = { ...base, named: now + 365 * DAY };
    for (const rule of ['arrival', 'name'] as const) {
      expect(windowStartOf({ ...future, rule })).toEqual({ instant: now, arrived: now, namedInTheFuture: true });
      expect(windowStartOf({ ...future, rule, recorded: now - DAY }).instant).toBe(now - DAY);
    }
    // One there before the daemon watched: from when it was created.
    expect(windowStartOf({ ...future, watchedSince: now, born: now - DAY }).instant).toBe(now - DAY);
    // Within maxClockJump of now: not in the future, the later of name and arrival.
    expect(windowStartOf({ ...base, named: now + 3_600_000 }).instant).toBe(now + 3_600_000);
  });

  it('dates by its name a backup created later than now (the clock is behind)', () => {
    expect(windowStartOf({ ...base, named: now - 8 * DAY, born: now + 3_600_000 }).instant).toBe(now - 8 * DAY);
  });

  it('takes nothing as arriving now outside the daemon (a command: no watchedSince)', () => {
    expect(windowStartOf({ ...base, watchedSince: undefined, named: now - 8 * DAY }).instant).toBe(now - 8 * DAY);
  });
});

describe('the window slack', () => {
  const slack = windowSlackMs(WEEK);

  it('is 1 % of the duration, every window held that much longer (7 days: 7 days 1 h 40 min 48 s)', () => {
    expect(slack).toBe(6_048_000);
    expect(windowMsOf(WEEK)).toBe(WEEK + 6_048_000);
  });

  it('dates by its name, with no arrival to record, a backup arriving within the slack of its name', () => {
    expect(windowStartOf({ ...base, named: now - slack })).toEqual({ instant: now - slack, namedInTheFuture: false });
    expect(windowStartOf({ ...base, named: now - 60_000 })).toEqual({ instant: now - 60_000, namedInTheFuture: false });
    // Its window still ends no earlier than its arrival + the duration.
    expect(now - slack + windowMsOf(WEEK)).toBeGreaterThanOrEqual(now + WEEK);
  });

  it('counts from its arrival, recorded, a backup arriving later than that', () => {
    expect(windowStartOf({ ...base, named: now - slack - 1 })).toEqual({
      instant: now,
      arrived: now,
      namedInTheFuture: false,
    });
  });

  it('honours a recorded arrival, even within the slack', () => {
    const recorded = now - 60_000;
    expect(windowStartOf({ ...base, named: now - 120_000, recorded })).toEqual({
      instant: recorded,
      arrived: recorded,
      namedInTheFuture: false,
    });
  });

  it('leaves names in the future as they were: from their arrival alone, recorded', () => {
    expect(windowStartOf({ ...base, named: now + 2 * DAY })).toEqual({
      instant: now,
      arrived: now,
      namedInTheFuture: true,
    });
    // Ahead by less than maxClockJump: the name, later than the arrival, with nothing to record.
    expect(windowStartOf({ ...base, named: now + 3_600_000 })).toEqual({
      instant: now + 3_600_000,
      namedInTheFuture: false,
    });
  });
});

describe('mayBeInWindow', () => {
  it('reads a record only when the window from arrival could still run', () => {
    const windowMs = windowMsOf(WEEK);
    expect(mayBeInWindow(now - DAY, now - 30 * DAY, now, windowMs)).toBe(true);
    expect(mayBeInWindow(now - 30 * DAY, now - 14 * DAY, now, windowMs)).toBe(true);
    expect(mayBeInWindow(now - 30 * DAY, now - 2 * windowMs, now, windowMs)).toBe(false);
    // Named just past the duration: still inside its window (the slack).
    expect(mayBeInWindow(now - WEEK - 1, now - 30 * DAY, now, windowMs)).toBe(true);
  });
});

describe('bornOf', () => {
  const examined = (birthtimeNs: string | undefined, ctimeMs: number, mtimeMs: number) => ({
    identity: {
      dev: '1',
      ino: '2',
      size: '3',
      mtimeNs: `${mtimeMs * 1e6}`,
      ctimeNs: `${ctimeMs * 1e6}`,
      ...(birthtimeNs === undefined ? {} : { birthtimeNs }),
    },
    type: 'file' as const,
    links: 1,
    size: 3,
    mtimeMs,
  });

  it('is the birth time where the filesystem keeps one', () => {
    expect(bornOf(examined(`${5_000 * 1e6}`, 9_000, 1_000))).toBe(5_000);
  });

  it('is the ctime without one, never the mtime: anyone on the remote can set an mtime back', () => {
    expect(bornOf(examined(undefined, 9_000, 1_000))).toBe(9_000);
    expect(bornOf(examined('0', 9_000, 1_000))).toBe(9_000);
  });
});
