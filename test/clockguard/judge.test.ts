import { describe, expect, it } from 'vitest';
import { judgeRecordedClock, judgeRunningClock, judgeStartClock } from '../../src/clockguard/judge.js';

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

  describe('at start, with the baseline recorded in an earlier process', () => {
    const baseline = { bootId: 'boot-a', wall: 10 * DAY, monotonic: 50_000 };
    const recorded = { lastWall: 10 * DAY + 3600_000, baseline };

    it('freezes a forward jump within the same boot, as a running daemon would', () => {
      // One minute of monotonic time since the baseline, three days of wall time: the daemon was crashed meanwhile.
      const verdict = judgeStartClock(recorded, { wall: 13 * DAY, monotonic: 110_000, bootId: 'boot-a' }, DAY);
      expect(verdict).toMatchObject({ ok: false });
      expect(!verdict.ok && verdict.reason).toContain('forward by 3.0 days');
      expect(!verdict.ok && verdict.reason).toContain('within this boot');
    });

    it('adds up steps taken across restarts: drift counts from the baseline, not from the last record', () => {
      // lastWall is recent (the last restart), but 10 steps of 23 hours took only minutes of monotonic time.
      const stepped = { lastWall: 10 * DAY + 9 * 23 * 3600_000, baseline };
      const now = { wall: 10 * DAY + 10 * 23 * 3600_000, monotonic: 50_000 + 600_000, bootId: 'boot-a' };
      expect(judgeStartClock(stepped, now, DAY)).toMatchObject({ ok: false });
    });

    it('accepts normal progress within the same boot, with no gap reported', () => {
      const now = { wall: 10 * DAY + 7200_000, monotonic: 50_000 + 7200_000 - 3000, bootId: 'boot-a' };
      expect(judgeStartClock(recorded, now, DAY)).toEqual({ ok: true });
    });

    it('allows a forward gap after a new boot (the server was off) and reports it', () => {
      const now = { wall: 15 * DAY, monotonic: 20_000, bootId: 'boot-b' };
      expect(judgeStartClock(recorded, now, DAY)).toEqual({ ok: true, forwardGapMs: 15 * DAY - recorded.lastWall });
    });

    it('judges a state without a boot id, or a clock that cannot name its boot, as after a reboot', () => {
      const now = { wall: 15 * DAY, monotonic: 110_000, bootId: 'boot-a' };
      expect(judgeStartClock({ lastWall: recorded.lastWall }, now, DAY)).toMatchObject({
        ok: true,
        forwardGapMs: 15 * DAY - recorded.lastWall,
      });
      expect(judgeStartClock(recorded, { wall: 15 * DAY, monotonic: 110_000 }, DAY)).toMatchObject({ ok: true });
      expect(judgeStartClock(recorded, { wall: 15 * DAY, bootId: 'boot-a' }, DAY)).toMatchObject({ ok: true });
    });

    it('still refuses a clock earlier than the last recorded time, in any boot', () => {
      expect(judgeStartClock(recorded, { wall: 9 * DAY, monotonic: 20_000, bootId: 'boot-b' }, DAY)).toMatchObject({
        ok: false,
      });
      expect(judgeStartClock(recorded, { wall: 9 * DAY, monotonic: 60_000, bootId: 'boot-a' }, DAY)).toMatchObject({
        ok: false,
      });
    });
  });
});
