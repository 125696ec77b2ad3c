import { spawnSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { acceptClock } from '../../src/clockguard/guard.js';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { DAY, startDaemon } from '../support/daemon.js';
import { allImmutable, isImmutable, tempRemote, waitFor, writeConfigFile } from '../support/remote.js';

const WEEK = 7 * DAY;
// A bound on polls, there for a broken daemon, not a speed asserted: a loaded 2-core machine can take seconds a lock.
const PATIENCE_MS = 60_000;

describe('clock guard', () => {
  it('freezes lifting when the wall clock jumps forward while running; locking goes on; --accept-clock resumes', async () => {
    const remote = await tempRemote();
    const t = Date.now() - 8 * DAY;
    let wall = t + 3600_000;
    let monotonic = 0;
    const backup = await writeVmBackup(remote.root, { datetime: xoDatetime(t) });
    const { logs } = await startDaemon(remote, {
      clock: { now: () => wall, monotonic: () => monotonic },
      config: { liftEveryMs: 50 },
      healthCheckEveryMs: 50,
    });
    expect(allImmutable(backup.units)).toBe(true);
    // Someone sets the clock 8 days ahead; one second passes for real. A lift pass whose guard read the clock before
    // this acts on that reading (its verdict), so it cannot lift with the new time unjudged.
    wall = t + WEEK + DAY;
    monotonic += 1000;
    await waitFor(
      () => logs.some((l) => l.msg.startsWith('lift pass skipped: lifting is frozen')),
      'the lift to be frozen',
      PATIENCE_MS,
    );
    expect(allImmutable(backup.units)).toBe(true);
    const frozen = JSON.parse(await readFile(path.join(remote.indexPath, 'clock-frozen.json'), 'utf8')) as {
      reason: string;
    };
    expect(frozen.reason).toContain('jumped forward by 8.0 days');
    await waitFor(
      async () =>
        (
          JSON.parse(await readFile(path.join(remote.indexPath, 'status.json'), 'utf8')) as {
            lifting: { frozen: boolean };
          }
        ).lifting.frozen,
      'status.json to say lifting is frozen',
      PATIENCE_MS,
    );
    // Locking goes on while lifting is frozen.
    const fresh = await writeVmBackup(remote.root, { datetime: xoDatetime(wall) });
    await waitFor(() => allImmutable(fresh.units), 'a new backup to be locked', PATIENCE_MS);
    // The admin checks the clock and accepts it: the expired backup is lifted at the next pass.
    await acceptClock(remote.indexPath, { now: () => wall });
    await waitFor(() => backup.units.every((u) => !isImmutable(u)), 'the expired backup to be lifted', PATIENCE_MS);
  }, 240_000);

  // The first test's race, made certain: the clock jumps right after the guard's reading, before the lift's.
  it('lifts with the time the guard judged, not a later reading it has not seen', async () => {
    const remote = await tempRemote();
    const t = Date.now() - 8 * DAY;
    let wall = t + 3600_000;
    let monotonic = 0;
    let jumpArmed = false;
    let guardReading = false;
    // The guard reads monotonic(), then now(): the jump lands just after that now(), for every later reader.
    const clock = {
      monotonic: () => {
        guardReading = true;
        return monotonic;
      },
      now: () => {
        const seen = wall;
        if (guardReading && jumpArmed) {
          jumpArmed = false;
          wall = t + WEEK + DAY;
          monotonic += 1000;
        }
        guardReading = false;
        return seen;
      },
    };
    const backup = await writeVmBackup(remote.root, { datetime: xoDatetime(t) });
    const { logs } = await startDaemon(remote, { clock, config: { liftEveryMs: 50 } });
    expect(allImmutable(backup.units)).toBe(true);
    jumpArmed = true;
    await waitFor(
      () => logs.some((l) => l.msg.startsWith('lift pass skipped: lifting is frozen')),
      'the lift to be frozen',
      PATIENCE_MS,
    );
    expect(jumpArmed).toBe(false);
    expect(allImmutable(backup.units)).toBe(true);
  }, 120_000);

  it('freezes lifting when the clock is stepped ahead a little at a time', async () => {
    const remote = await tempRemote();
    const t = Date.now() - 3600_000;
    let wall = t + 3600_000;
    let monotonic = 0;
    const backup = await writeVmBackup(remote.root, { datetime: xoDatetime(t) });
    const { logs } = await startDaemon(remote, {
      clock: { now: () => wall, monotonic: () => monotonic },
      config: { liftEveryMs: 30 },
    });
    // 23 hours at a time, one second of real time each: never a day at once, 9.6 days in all.
    for (let step = 0; step < 10; step++) {
      wall += 23 * 3600_000;
      monotonic += 1000;
      const passes = logs.filter((l) => l.module === 'lift' || l.msg.startsWith('lift pass skipped')).length;
      await waitFor(
        () =>
          logs.filter((l) => l.module === 'lift' || l.msg.startsWith('lift pass skipped')).length > passes ||
          logs.some((l) => l.msg.startsWith('lifting is frozen')),
        'a lift pass',
      );
    }
    expect(logs.some((l) => l.msg.startsWith('lifting is frozen'))).toBe(true);
    expect(allImmutable(backup.units)).toBe(true);
  });

  it('freezes lifting at start when the clock is earlier than the index last recorded, and lift refuses too', async () => {
    const remote = await tempRemote();
    const t = Date.now() - 8 * DAY;
    const backup = await writeVmBackup(remote.root, { datetime: xoDatetime(t) });
    const first = await startDaemon(remote, { clock: { now: () => t + 3600_000 } });
    await first.daemon.stop();
    await writeFile(path.join(remote.indexPath, 'clock.json'), JSON.stringify({ lastWall: Date.now() + 30 * DAY }));
    const second = await startDaemon(remote);
    expect(second.logs.some((l) => l.msg.startsWith('lift pass skipped: lifting is frozen'))).toBe(true);
    expect(allImmutable(backup.units)).toBe(true);
    await second.daemon.stop();

    const config = await writeConfigFile(remote);
    const bin = path.resolve('bin/xo-immutable-backups.js');
    const refused = spawnSync(process.execPath, [bin, 'lift', '--config', config], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('CLOCK_FROZEN');
    expect(refused.stderr).toContain('--accept-clock');
    expect(allImmutable(backup.units)).toBe(true);
    const accepted = spawnSync(process.execPath, [bin, 'lift', '--config', config, '--accept-clock'], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(accepted.status).toBe(0);
    for (const unit of backup.units) expect(isImmutable(unit)).toBe(false);
  });

  describe('across a restart', () => {
    // The daemon ran an hour after the backup, in boot A; then it is restarted (crashed, or killed) with the wall clock
    // set 8 days ahead while only seconds passed for the monotonic clock: skewed NTP, then a crash.
    async function restartAfterJump(secondBoot: { bootId: string | undefined; monotonic: number }) {
      const remote = await tempRemote();
      const t = Date.now() - 8 * DAY;
      let wall = t + 3600_000;
      let monotonic = 5_000_000;
      let bootId: string | undefined = 'boot-a';
      const clock = { now: () => wall, monotonic: () => monotonic, bootId: () => bootId };
      const backup = await writeVmBackup(remote.root, { datetime: xoDatetime(t) });
      const first = await startDaemon(remote, { clock });
      expect(allImmutable(backup.units)).toBe(true);
      await first.daemon.stop();
      wall = t + WEEK + DAY;
      monotonic = secondBoot.monotonic;
      bootId = secondBoot.bootId;
      const second = await startDaemon(remote, { clock });
      return { remote, backup, logs: second.logs };
    }

    it('freezes lifting at start when the wall clock jumped forward within the same boot', async () => {
      const { remote, backup, logs } = await restartAfterJump({ bootId: 'boot-a', monotonic: 5_000_000 + 10_000 });
      expect(logs.some((l) => l.msg.startsWith('lift pass skipped: lifting is frozen'))).toBe(true);
      expect(allImmutable(backup.units)).toBe(true);
      const frozen = JSON.parse(await readFile(path.join(remote.indexPath, 'clock-frozen.json'), 'utf8')) as {
        reason: string;
      };
      expect(frozen.reason).toContain('jumped forward by 8.0 days');
      expect(frozen.reason).toContain('within this boot');
    });

    it('allows the forward gap after a new boot, with a warning, and lifts', async () => {
      const { backup, logs } = await restartAfterJump({ bootId: 'boot-b', monotonic: 30_000 });
      expect(logs.some((l) => l.level === 'warn' && l.msg.includes('forward since this index last recorded'))).toBe(
        true,
      );
      for (const unit of backup.units) expect(isImmutable(unit)).toBe(false);
    });

    it('reads a clock state written before boot ids were kept as an unknown boot, then records the boot', async () => {
      const remote = await tempRemote();
      const t = Date.now() - 8 * DAY;
      const backup = await writeVmBackup(remote.root, { datetime: xoDatetime(t) });
      const clockFile = path.join(remote.indexPath, 'clock.json');
      await mkdir(remote.indexPath, { recursive: true, mode: 0o700 });
      await writeFile(clockFile, JSON.stringify({ lastWall: t + 3600_000 }));
      const clock = { now: () => t + WEEK + DAY, monotonic: () => 1000, bootId: () => 'boot-a' };
      const { logs } = await startDaemon(remote, { clock });
      expect(logs.some((l) => l.level === 'warn' && l.msg.includes('forward since this index last recorded'))).toBe(
        true,
      );
      for (const unit of backup.units) expect(isImmutable(unit)).toBe(false);
      expect(JSON.parse(await readFile(clockFile, 'utf8'))).toEqual({
        version: 1,
        lastWall: t + WEEK + DAY,
        baseline: { wall: t + WEEK + DAY, monotonic: 1000, bootId: 'boot-a' },
      });
    });

    it('makes `lift` refuse too, judged on the real boot id and monotonic clock', async () => {
      const remote = await tempRemote();
      const t = Date.now() - 8 * DAY;
      const backup = await writeVmBackup(remote.root, { datetime: xoDatetime(t) });
      await startDaemon(remote, { clock: { now: () => t + 3600_000 } }).then(({ daemon }) => daemon.stop());
      // As the daemon records it in this boot: an hour after the backup, ten seconds ago by the monotonic clock.
      const baseline = {
        wall: t + 3600_000,
        monotonic: systemClock.monotonic!() - 10_000,
        bootId: systemClock.bootId!(),
      };
      await writeFile(path.join(remote.indexPath, 'clock.json'), JSON.stringify({ lastWall: baseline.wall, baseline }));
      const config = await writeConfigFile(remote);
      const bin = path.resolve('bin/xo-immutable-backups.js');
      const refused = spawnSync(process.execPath, [bin, 'lift', '--config', config], {
        encoding: 'utf8',
        timeout: 20_000,
      });
      expect(refused.status).toBe(1);
      expect(refused.stderr).toContain('CLOCK_FROZEN');
      expect(refused.stderr).toContain('within this boot');
      expect(allImmutable(backup.units)).toBe(true);
    });
  });
});
