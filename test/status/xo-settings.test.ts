import { describe, expect, it } from 'vitest';
import type { BackupShape } from '../../src/status/restore-survey.js';
import { adviseXoSettings } from '../../src/status/xo-settings.js';

const NOW = Date.parse('2026-12-10T00:00:00Z');
const DAY = 86_400_000;
const WINDOW = 7 * DAY;

// Daily runs of one delta schedule, `daysAgo` each; `fulls`: the runs whose disks are all bases.
function daily(daysAgo: readonly number[], fulls: readonly number[], baseOf: (ago: number) => number): BackupShape[] {
  return daysAgo.map((ago) => ({
    backup: `${ago}.json`,
    instant: NOW - ago * DAY,
    inWindow: ago < 7,
    scheduleId: 's',
    mode: 'delta',
    full: fulls.includes(ago),
    baseInstant: NOW - baseOf(ago) * DAY,
  }));
}

describe('adviseXoSettings', () => {
  it('no full backup interval: 14 daily runs merged forward onto one base, the chain is never freed', () => {
    const backups = daily([13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0], [13], () => 13);
    const advice = adviseXoSettings([{ vm: 'vm', backups, blockedMerges: [] }], NOW, WINDOW);
    expect(advice.map((a) => [a.vm, a.problem])).toEqual([['vm', 'chain-never-freed']]);
    expect(advice[0]?.set).toContain('at most 7');
  });

  it('a full every 7 runs and retention 14: nothing to say', () => {
    const ago = [13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0];
    const backups = daily(ago, [13, 6], (a) => (a >= 7 ? 13 : 6));
    expect(adviseXoSettings([{ vm: 'vm', backups, blockedMerges: [] }], NOW, WINDOW)).toEqual([]);
  });

  it('a merge XO left unfinished: retention met a locked chain', () => {
    const backups = daily([6, 5, 4, 3, 2, 1, 0], [6], () => 6);
    const advice = adviseXoSettings(
      [{ vm: 'vm', backups, blockedMerges: ['vdis/j/v/.20261203T000000Z.alias.vhd.merge.json'] }],
      NOW,
      WINDOW,
    );
    expect(advice.map((a) => a.problem)).toEqual(['retention-collides']);
    expect(advice[0]?.detail).toContain('unfinished merge');
  });

  it('every retained run inside the window on a chain that started before: retention probably too short', () => {
    const backups = daily([6, 5, 4, 3, 2, 1, 0], [], () => 20);
    const problems = adviseXoSettings([{ vm: 'vm', backups, blockedMerges: [] }], NOW, WINDOW).map((a) => a.problem);
    expect(problems).toEqual(['chain-never-freed', 'retention-collides']);
  });

  it('a chain whose base is older than the duration but inside the window (its 1 % slack) is not yet unfreed', () => {
    // 7 days and one hour ago: past the duration, inside the window of 7 days 1 h 40 min.
    const backups = daily([6, 5, 4, 3, 2, 1, 0], [], () => 7 + 1 / 24);
    expect(adviseXoSettings([{ vm: 'vm', backups, blockedMerges: [] }], NOW, WINDOW)).toEqual([]);
    // Two hours: past the window too.
    const older = daily([6, 5, 4, 3, 2, 1, 0], [], () => 7 + 2 / 24);
    expect(
      adviseXoSettings([{ vm: 'vm', backups: older, blockedMerges: [] }], NOW, WINDOW).map((a) => a.problem),
    ).toEqual(['chain-never-freed', 'retention-collides']);
  });

  it('says nothing it cannot know: encrypted remotes (no schedule, no chain read) and a single backup', () => {
    const unknown: BackupShape[] = [{ backup: 'a.json', instant: NOW - DAY, inWindow: true }];
    const single = daily([1], [], () => 30);
    expect(
      adviseXoSettings(
        [
          { vm: 'a', backups: unknown, blockedMerges: [] },
          { vm: 'b', backups: single, blockedMerges: [] },
        ],
        NOW,
        WINDOW,
      ).map((a) => [a.vm, a.problem]),
    ).toEqual([['b', 'chain-never-freed']]);
  });
});
