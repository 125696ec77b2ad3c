import { describe, expect, it } from 'vitest';
import type { AttributesAdapter } from '../../src/attributes/adapter.js';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { entryName } from '../../src/index/entry.js';
import { liftRemote } from '../../src/lift/apply.js';
import type { LiftReport } from '../../src/lift/report.js';
import { utcDay } from '../../src/remote/datetime.js';
import { DAY } from '../support/daemon.js';
import { isImmutable } from '../support/remote.js';
import { LOCKED_AT, lockedVmBackup } from '../support/locked-backup.js';

// What a lift says of a json the flag helper held (EHELD) for a disk that stays locked: deferred once (also when its
// chunk is not the last), neither failed nor suspicious, its entry kept for the next pass, and the dry run says the
// same as the real lift (it looks in Node, the real lift in the helper).
describe('a json held for a locked flat VHD of its backup', () => {
  const outcome = (report: LiftReport) => ({
    unlocked: report.unlocked.map((u) => u.path).sort(),
    deferred: report.deferred,
    failed: report.failed,
    suspicious: report.suspicious,
  });

  for (const chunkSize of [1, undefined])
    it(`is deferred once and stays indexed, as the dry run says (chunks of ${chunkSize ?? 'the default'})`, async () => {
      const { backup, context } = await lockedVmBackup(3);
      const t = LOCKED_AT;
      const disks = backup.units.filter((u) => u.endsWith('.vhd'));
      const json = backup.label;
      // The last disk is claimed by a newer backup still inside its window: it stays locked, and so must the json.
      const kept = disks.at(-1)!;
      const newer = t + 5 * DAY;
      const [old] = await context.index.readEntries(utcDay(t), [entryName(kept)]);
      await context.index.write({ ...old!.entry!, backupDatetime: new Date(newer).toISOString(), day: utcDay(newer) });
      const options = { now: t + 8 * DAY, all: false, chunkSize };

      const dry = await liftRemote(context, new IoctlAdapter(), { ...options, dryRun: true });
      const real = await liftRemote(context, new IoctlAdapter(), { ...options, dryRun: false });

      const freed = backup.units.filter((u) => u !== json && u !== kept).sort();
      expect(outcome(real)).toEqual({ unlocked: freed, deferred: [json], failed: [], suspicious: [] });
      expect(outcome(dry)).toEqual(outcome(real));
      expect(isImmutable(json) && isImmutable(kept)).toBe(true);
      const [entry] = await context.index.readEntries(utcDay(t), [entryName(json)]);
      expect(entry?.entry?.path).toBe(json);

      // The next pass after the disk's window lifts both, and forgets them.
      const later = await liftRemote(context, new IoctlAdapter(), { ...options, now: newer + 8 * DAY, dryRun: false });
      expect(outcome(later)).toEqual({ unlocked: [json, kept].sort(), deferred: [], failed: [], suspicious: [] });
      expect(isImmutable(json) || isImmutable(kept)).toBe(false);
      const [gone] = await context.index.readEntries(utcDay(t), [entryName(json)]);
      expect(gone?.entry).toBeUndefined();
    });

  // The helper's J record holds a json whose disk's flag it cannot read (a filesystem without the flag); the dry run,
  // which reads that flag through the adapter, says the same.
  it('is deferred in a dry run when a disk left locked has a flag that cannot be read', async () => {
    const { backup, context } = await lockedVmBackup(2);
    const t = LOCKED_AT;
    const kept = backup.units.filter((u) => u.endsWith('.vhd')).at(-1)!;
    const newer = t + 5 * DAY;
    const [old] = await context.index.readEntries(utcDay(t), [entryName(kept)]);
    await context.index.write({ ...old!.entry!, backupDatetime: new Date(newer).toISOString(), day: utcDay(newer) });
    const real = new IoctlAdapter();
    const unreadable: AttributesAdapter = {
      setImmutable: (within, targets, immutable) => real.setImmutable(within, targets, immutable),
      checkClear: (within, targets) => real.checkClear(within, targets),
      async isImmutable(within, paths) {
        const flags = await real.isImmutable(within, paths);
        if (flags.has(kept)) flags.set(kept, undefined);
        return flags;
      },
    };

    const dry = await liftRemote(context, unreadable, { now: t + 8 * DAY, all: false, dryRun: true });
    expect(dry.deferred).toEqual([backup.label]);
    expect(dry.unlocked.map((u) => u.path)).not.toContain(backup.label);
    expect(isImmutable(backup.label) && isImmutable(kept)).toBe(true);
  });
});
