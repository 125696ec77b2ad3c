import { renameSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AttributesAdapter } from '../../src/attributes/adapter.js';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { entryName } from '../../src/index/entry.js';
import { liftRemote } from '../../src/lift/apply.js';
import { utcDay } from '../../src/remote/datetime.js';
import { DAY } from '../support/daemon.js';
import { isImmutable } from '../support/remote.js';
import { LOCKED_AT, lockedVmBackup } from '../support/locked-backup.js';

// A path the helper cleared does not stay clear: a locked file cannot be renamed, but its VDI folder can, so a locked
// disk is brought to that very path before the pass judges the json (docs/security.md threat model).
describe('a json is not lifted while a locked flat VHD of its backup was swapped in by its folder', () => {
  it('reads the flag of a disk path the pass cleared, once the VDI folders were swapped', async () => {
    const { backup, context } = await lockedVmBackup(2);
    const t = LOCKED_AT;
    const [due, kept] = backup.units.filter((u) => u.endsWith('.vhd'));
    // The second disk is claimed by a newer backup still inside its window (an index written before jsons were
    // claimed with their VHDs): it stays locked, and so must the json.
    const newer = t + 5 * DAY;
    const [old] = await context.index.readEntries(utcDay(t), [entryName(kept!)]);
    await context.index.write({ ...old!.entry!, backupDatetime: new Date(newer).toISOString(), day: utcDay(newer) });
    const real = new IoctlAdapter();
    // The attacker, once the helper cleared the first disk: its VDI folder and the locked disk's swap places.
    const swapping: AttributesAdapter = {
      isImmutable: (within, paths) => real.isImmutable(within, paths),
      checkClear: (within, targets) => real.checkClear(within, targets),
      async setImmutable(within, targets, immutable) {
        const outcomes = await real.setImmutable(within, targets, immutable);
        if (targets.some((target) => target.path === due)) {
          const [a, b] = [path.dirname(due!), path.dirname(kept!)];
          renameSync(a, `${a}.aside`);
          renameSync(b, a);
          renameSync(`${a}.aside`, b);
        }
        return outcomes;
      },
    };

    await liftRemote(context, swapping, { now: t + 8 * DAY, dryRun: false, all: false });

    // The locked disk now sits where the cleared one was: the json waits for it.
    expect(isImmutable(due!)).toBe(true);
    expect(isImmutable(backup.label)).toBe(true);
  });
});
