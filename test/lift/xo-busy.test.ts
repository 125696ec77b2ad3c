import { mkdir, rmdir, utimes } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import type { RemoteContext } from '../../src/context/remote-context.js';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { IndexStore } from '../../src/index/store.js';
import { liftRemote } from '../../src/lift/apply.js';
import { isHeldAt, xoLockOf } from '../../src/lift/xo-busy.js';
import { DAY, startDaemon } from '../support/daemon.js';
import { allImmutable, immutableAmong, tempRemote } from '../support/remote.js';

describe('XO running on a VM folder holds its lift back', () => {
  it('reads the lock folder XO holds for the VM folder a unit lives in', () => {
    expect(xoLockOf('/r', '/r/xo-vm-backups/vm1/vdis/j/v/20261201T010000Z.vhd')).toBe('/r/xo-vm-backups/vm1.lock');
    expect(xoLockOf('/r', '/r/xo-vm-backups/vm1/20261201T010000Z.json')).toBe('/r/xo-vm-backups/vm1.lock');
    expect(xoLockOf('/r', '/r/xo-config-backups/s/20261201T010000Z')).toBeUndefined();
    expect(xoLockOf('/r', '/r/xo-vm-backups/.queue/x')).toBeUndefined();
  });

  it('counts a lock as held while proper-lockfile keeps it fresh, never one far from now either way', () => {
    const now = Date.UTC(2026, 11, 1);
    expect(isHeldAt(now - 5_000, now)).toBe(true);
    expect(isHeldAt(now + 5_000, now)).toBe(true);
    expect(isHeldAt(now - 10 * 60_000, now)).toBe(false);
    expect(isHeldAt(now + 365 * DAY, now)).toBe(false);
  });

  it('leaves an expired backup locked while XO holds its VM folder, and lifts it once XO is done', async () => {
    const remote = await tempRemote();
    const t = Date.UTC(2026, 9, 1, 1, 0, 0);
    const backup = await writeVmBackup(remote.root, { vm: 'vm1', datetime: xoDatetime(t), disks: [{ type: 'flat' }] });
    const { daemon } = await startDaemon(remote, { clock: { now: () => t + 3_600_000 } });
    await daemon.stop();
    expect(allImmutable(backup.units)).toBe(true);
    const context: RemoteContext = {
      id: 'r',
      root: remote.root,
      realRoot: remote.root,
      durationMs: 7 * DAY,
      index: new IndexStore(remote.indexPath, 'r'),
      encrypted: false,
    };
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
});
