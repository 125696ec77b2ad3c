import { lstatSync, mkdirSync, utimesSync } from 'node:fs';
import { mkdir, rmdir, utimes } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AttributesAdapter } from '../../src/attributes/adapter.js';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import type { RemoteContext } from '../../src/context/remote-context.js';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { IndexStore } from '../../src/index/store.js';
import { liftRemote } from '../../src/lift/apply.js';
import { isHeldAt, xoLockOf } from '../../src/lift/xo-busy.js';
import { DAY, startDaemon } from '../support/daemon.js';
import { allImmutable, immutableAmong, tempRemote } from '../support/remote.js';
import { LOCKED_AT, lockedVmBackup } from '../support/locked-backup.js';
import { remoteContextOf } from '../support/remote-context.js';

describe('XO running on a VM folder holds its lift back', () => {
  it('reads the lock folder XO holds for the VM folder a unit lives in', () => {
    expect(xoLockOf('/r', '/r/xo-vm-backups/vm1/vdis/j/v/20261201T010000Z.vhd')).toBe('/r/xo-vm-backups/vm1.lock');
    expect(xoLockOf('/r', '/r/xo-vm-backups/vm1/20261201T010000Z.json')).toBe('/r/xo-vm-backups/vm1.lock');
    expect(xoLockOf('/r', '/r/xo-config-backups/s/20261201T010000Z')).toBeUndefined();
    expect(xoLockOf('/r', '/r/xo-vm-backups/.queue/x')).toBeUndefined();
    expect(xoLockOf('/r', '/r/xo-vm-backups/vm1')).toBeUndefined();
    expect(xoLockOf('/r', '/r/xo-vm-backups/vm1.lock/x')).toBeUndefined();
    expect(xoLockOf('/r', '/r/xo-vm-backups/vm1/../vm2/x.json')).toBe('/r/xo-vm-backups/vm2.lock');
  });

  it('counts a lock as held while proper-lockfile keeps it fresh, never one far from now either way', () => {
    const now = Date.UTC(2026, 11, 1);
    expect(isHeldAt(now - 5_000, now)).toBe(true);
    expect(isHeldAt(now + 5_000, now)).toBe(true);
    expect(isHeldAt(now - 10 * 60_000, now)).toBe(false);
    expect(isHeldAt(now + 365 * DAY, now)).toBe(false);
  });

  it('leaves an expired backup locked while XO holds its VM folder, and lifts it once XO is done', async () => {
    const { remote, backup, context } = await lockedVmBackup();
    const t = LOCKED_AT;
    expect(allImmutable(backup.units)).toBe(true);
    const now = t + 30 * DAY;
    const lock = path.join(remote.root, 'xo-vm-backups', 'vm1.lock');
    await mkdir(lock);
    // Fresh by the machine's clock, as proper-lockfile keeps it (the lift's own clock is a month ahead).
    await utimes(lock, new Date(Date.now() - 2_000), new Date(Date.now() - 2_000));

    const held = await liftRemote(context, new IoctlAdapter(), { now, dryRun: false, all: false });
    expect(held.unlocked).toEqual([]);
    expect([...held.deferred].sort()).toEqual([...backup.units].sort());
    expect(immutableAmong(backup.units)).toHaveLength(backup.units.length);

    await rmdir(lock);
    const done = await liftRemote(context, new IoctlAdapter(), { now, dryRun: false, all: false });
    expect(done.deferred).toEqual([]);
    expect(immutableAmong(backup.units)).toEqual([]);
  });

  it('leaves locked a VM folder XO takes after its unit was planned, before the helper clears it', async () => {
    const remote = await tempRemote();
    const t = Date.UTC(2026, 9, 1, 1, 0, 0);
    const disks = [{ type: 'flat' as const }, { type: 'flat' as const }];
    const units = new Map<string, string[]>();
    for (const vm of ['vm1', 'vm2'])
      units.set(vm, (await writeVmBackup(remote.root, { vm, datetime: xoDatetime(t), disks })).units);
    const { daemon } = await startDaemon(remote, { clock: { now: () => t + 3_600_000 } });
    await daemon.stop();
    const index = new IndexStore(remote.indexPath, 'r');
    const context: RemoteContext = remoteContextOf(remote.root, index);
    const byIno = new Map([...units.values()].flat().map((unit) => [String(lstatSync(unit).ino), unit]));
    // The real helper, watched: what it was asked to clear before XO took the folder.
    const real = new IoctlAdapter();
    const asked = new Set<string>();
    const watched: AttributesAdapter = {
      isImmutable: (within, paths) => real.isImmutable(within, paths),
      checkClear: (within, targets) => real.checkClear(within, targets),
      setImmutable(within, targets, immutable) {
        for (const target of targets) asked.add(target.path);
        return real.setImmutable(within, targets, immutable);
      },
    };
    // XO takes a VM folder while a unit of it is examined (its window read), after the lift planned it: the second
    // unit examined, chunks of one.
    const read = index.windows.readNow.bind(index.windows);
    let reads = 0;
    let taken: { vm: string; unit: string; askedBefore: Set<string> } | undefined;
    index.windows.readNow = (identity) => {
      if (++reads === 2) {
        const unit = byIno.get(identity.ino)!;
        const vm = path.relative(path.join(remote.root, 'xo-vm-backups'), unit).split(path.sep)[0]!;
        const lock = path.join(remote.root, 'xo-vm-backups', `${vm}.lock`);
        mkdirSync(lock);
        utimesSync(lock, new Date(Date.now() - 2_000), new Date(Date.now() - 2_000));
        taken = { vm, unit, askedBefore: new Set(asked) };
      }
      return read(identity);
    };

    const now = t + 30 * DAY;
    const report = await liftRemote(context, watched, { now, dryRun: false, all: false, chunkSize: 1 });
    const { vm, unit, askedBefore } = taken!;
    const waiting = units.get(vm)!.filter((u) => !askedBefore.has(u));
    expect(waiting).toContain(unit);
    expect(immutableAmong(units.get(vm)!).sort()).toEqual([...waiting].sort());
    expect([...report.deferred].sort()).toEqual([...waiting].sort());
    expect(immutableAmong(units.get(vm === 'vm1' ? 'vm2' : 'vm1')!)).toEqual([]);

    await rmdir(path.join(remote.root, 'xo-vm-backups', `${vm}.lock`));
    await liftRemote(context, new IoctlAdapter(), { now, dryRun: false, all: false });
    expect(immutableAmong(units.get(vm)!)).toEqual([]);
  });
});
