import { describe, expect, it } from 'vitest';
import { judgeRecordedClock, judgeRunningClock } from '../../src/clockguard/judge.js';

const DAY = 86_400_000;

describe('clock guard rules', () => {
  it('accepts a wall clock that moves with the monotonic one, and small corrections', () => {
    expect(judgeRunningClock({ wall: 0, monotonic: 0 }, { wall: 3600_000, monotonic: 3600_000 }, DAY)).toEqual({
      ok: true,
    });
    expect(judgeRunningClock({ wall: 0, monotonic: 0 }, { wall: 3600_000 + 5000, monotonic: 3600_000 }, DAY)).toEqual({
      ok: true,
    });
  });

  it('freezes on a jump of more than the limit, forward or backward', () => {
    const forward = judgeRunningClock({ wall: 0, monotonic: 0 }, { wall: 3 * DAY, monotonic: 1000 }, DAY);
    expect(forward).toMatchObject({ ok: false });
    expect(!forward.ok && forward.reason).toContain('forward by 3.0 days');
    expect(judgeRunningClock({ wall: 10 * DAY, monotonic: 0 }, { wall: 8 * DAY, monotonic: 1000 }, DAY)).toMatchObject({
      ok: false,
    });
  });

  it('across a restart, refuses a clock earlier than the last recorded time and only reports a forward gap', () => {
    expect(judgeRecordedClock(10 * DAY, 9 * DAY, DAY)).toMatchObject({ ok: false });
    expect(judgeRecordedClock(10 * DAY, 10 * DAY - 30_000, DAY)).toEqual({ ok: true });
    expect(judgeRecordedClock(10 * DAY, 15 * DAY, DAY)).toEqual({ ok: true, forwardGapMs: 5 * DAY });
    expect(judgeRecordedClock(undefined, 0, DAY)).toEqual({ ok: true });
  });
});
