import { describe, expect, it } from 'vitest';
import type { AttributesAdapter } from '../../src/attributes/adapter.js';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { entryName } from '../../src/index/entry.js';
import { liftRemote } from '../../src/lift/apply.js';
import { jsonBackup } from '../../src/lift/flat-order.js';
import { utcDay } from '../../src/remote/datetime.js';
import { DAY } from '../support/daemon.js';
import { allImmutable, isImmutable } from '../support/remote.js';
import { LOCKED_AT, lockedVmBackup } from '../support/locked-backup.js';

describe("a json is not lifted while its backup's flat VHD stays locked", () => {
  it('reads which backup a json is', () => {
    expect(jsonBackup('/r', '/r/xo-vm-backups/vm1/20261201T010000Z.json')).toEqual({
      vmFolder: '/r/xo-vm-backups/vm1',
      datetime: '20261201T010000Z',
    });
    expect(jsonBackup('/r', '/r/xo-vm-backups/vm1/cache.json.gz')).toBeUndefined();
    expect(jsonBackup('/r', '/r/xo-config-backups/s/20261201T010000Z/metadata.json')).toBeUndefined();
    expect(jsonBackup('/r', '/r/xo-vm-backups/vm1/vdis/j/v/20261201T010000Z.json')).toBeUndefined();
  });

  // An index written before a chain's jsons were claimed with its VHDs: the disk's entry is dated by a newer backup
  // still inside its window, the json's by its own, expired one. XO's cleanVm would delete a json lifted alone.
  it('keeps the json locked while its disk is, and lifts it in the pass that lifts the disk', async () => {
    const { backup, context } = await lockedVmBackup();
    const t = LOCKED_AT;
    expect(allImmutable(backup.units)).toBe(true);
    const disk = backup.units.find((u) => u.endsWith('.vhd'))!;
    const json = backup.label;
    const newer = t + 5 * DAY;
    const [old] = await context.index.readEntries(utcDay(t), [entryName(disk)]);
    await context.index.write({ ...old!.entry!, backupDatetime: new Date(newer).toISOString(), day: utcDay(newer) });

    const early = await liftRemote(context, new IoctlAdapter(), { now: t + 8 * DAY, dryRun: false, all: false });
    expect(early.unlocked.map((u) => u.path)).toEqual([]);
    expect(early.deferred).toEqual([json]);
    expect(isImmutable(json) && isImmutable(disk)).toBe(true);

    // The json's bucket is read first, while the disk (in the newer backup's bucket) is still locked: the json is
    // looked at again at the end of the pass, once the disk went.
    const later = await liftRemote(context, new IoctlAdapter(), { now: newer + 8 * DAY, dryRun: false, all: false });
    expect(later.unlocked.map((u) => u.path)).toEqual([disk, json]);
    expect(later.deferred).toEqual([]);
    expect(isImmutable(json) || isImmutable(disk)).toBe(false);
  });

  // The pass trusts the helper's answers for the disks it cleared, not what it asked: a disk whose clear failed is
  // looked for and its flag read, and its json waits.
  it('keeps the json locked when the helper fails to clear its disk', async () => {
    const { backup, context } = await lockedVmBackup();
    const t = LOCKED_AT;
    const disk = backup.units.find((u) => u.endsWith('.vhd'))!;
    const real = new IoctlAdapter();
    const failing: AttributesAdapter = {
      isImmutable: (within, paths) => real.isImmutable(within, paths),
      checkClear: (within, targets) => real.checkClear(within, targets),
      async setImmutable(within, targets, immutable) {
        const outcomes = await real.setImmutable(
          within,
          targets.filter((target) => target.path !== disk),
          immutable,
        );
        const failed = targets.some((target) => target.path === disk);
        return failed
          ? [...outcomes, { path: disk, status: 'failed', code: 'EIO', message: 'Input/output error' }]
          : outcomes;
      },
    };

    const report = await liftRemote(context, failing, { now: t + 8 * DAY, dryRun: false, all: false });
    expect(report.failed.map((f) => f.path)).toEqual([disk]);
    expect(report.deferred).toEqual([backup.label]);
    expect(isImmutable(disk) && isImmutable(backup.label)).toBe(true);

    const later = await liftRemote(context, real, { now: t + 8 * DAY, dryRun: false, all: false });
    expect(later.unlocked.map((u) => u.path)).toEqual([disk, backup.label]);
    expect(isImmutable(disk) || isImmutable(backup.label)).toBe(false);
  });
});
