import { lstatSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { dayOf } from '../../src/index/entry.js';
import { IndexStore } from '../../src/index/store.js';
import { parseBackupDatetime } from '../../src/remote/datetime.js';
import { startDaemon } from '../support/daemon.js';
import { indexAsLocked } from '../support/index-entry.js';
import { allImmutable, isImmutable, tempRemote, waitFor } from '../support/remote.js';

const HOUR = 3_600_000;

// Issue 21, hole 2: "unchanged since the lock" alone is not "protected". An entry whose identity matches a unit whose
// flag is off (written by hand for a backup never locked, or a lock that never reached the flag) is caught by the
// full proof, which reads the flag of every unit it would otherwise skip as locked as indexed.
describe('the full proof', () => {
  it('locks again a unit indexed as locked whose immutable flag is off, and says so', async () => {
    const remote = await tempRemote();
    const locked = await writeVmBackup(remote.root, {
      datetime: xoDatetime(Date.now() - 2 * HOUR),
      disks: [{ type: 'flat' }],
    });
    // Locked by the daemon, which then stops.
    const first = await startDaemon(remote);
    expect(allImmutable(locked.units)).toBe(true);
    await first.daemon.stop();
    const never = await writeVmBackup(remote.root, {
      datetime: xoDatetime(Date.now() - HOUR),
      disks: [{ type: 'flat' }, { type: 'vhd-directory' }],
    });
    const datetime = never.label.slice(never.label.lastIndexOf('/') + 1, -'.json'.length);
    const instant = parseBackupDatetime(datetime)!;
    // Its entries match its units exactly (identity as lstat gives it now); no flag was ever set.
    for (const unit of never.units) await indexAsLocked(remote.indexPath, unit, { json: never.label, instant });
    expect(never.units.some((unit) => isImmutable(unit))).toBe(false);

    const { logs } = await startDaemon(remote, { config: { rescanEveryMs: 500 } });
    await waitFor(() => allImmutable(never.units), 'the full proof to lock the units whose flag is off', 20_000);

    const warned = (unit: string): boolean =>
      logs.some(
        (l) =>
          l.level === 'warn' &&
          l.security === true &&
          l.path === unit &&
          l.msg.includes('indexed as locked but its immutable flag is off'),
      );
    await waitFor(() => never.units.every(warned), 'a security warning naming each unit');
    // Only the units whose flag was off: the backup the daemon locked itself is not named.
    expect(locked.units.some(warned)).toBe(false);
    // A normal lock: each entry ends up recording the unit as it is now, locked (its ctime moved with the flag).
    const index = new IndexStore(remote.indexPath, 'r');
    const recorded = async (unit: string): Promise<boolean> => {
      const entry = await index.read(dayOf(instant), unit);
      return (
        entry?.state === 'locked' && entry.identity?.ctimeNs === lstatSync(unit, { bigint: true }).ctimeNs.toString()
      );
    };
    await waitFor(async () => (await Promise.all(never.units.map(recorded))).every(Boolean), 'the entries rewritten');
  }, 40_000);
});
