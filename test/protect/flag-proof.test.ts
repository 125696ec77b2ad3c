import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Within } from '../../src/attributes/adapter.js';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { writeConfigBackup, writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { IndexStore } from '../../src/index/store.js';
import { parseBackupDatetime } from '../../src/remote/datetime.js';
import type { LeafFolder } from '../../src/protect/context.js';
import { reconcileFolder } from '../../src/protect/reconcile.js';
import { DAY } from '../support/daemon.js';
import { indexAsLocked } from '../support/index-entry.js';
import { tempRemote, type TestRemote } from '../support/remote.js';

const HOUR = 3_600_000;

// The real flag helper, counting its runs: the full proof must read flags in one run per folder, event reconciles not.
function countingFlags(): { flags: IoctlAdapter; runs: string[][] } {
  const real = new IoctlAdapter();
  const runs: string[][] = [];
  const flags = Object.assign(Object.create(real) as IoctlAdapter, {
    isImmutable: async (within: Within, paths: readonly string[]) => {
      runs.push([...paths]);
      return real.isImmutable(within, paths);
    },
  });
  return { flags, runs };
}

function leaf(remote: TestRemote, kind: LeafFolder['kind'], folderPath: string): LeafFolder {
  const index = new IndexStore(remote.indexPath, 'r');
  return {
    remote: { id: 'r', root: remote.root, realRoot: remote.root, durationMs: 7 * DAY, index, encrypted: false },
    kind,
    path: folderPath,
  };
}

describe('units indexed as locked with their flag off', () => {
  it('are asked for again by a full reconcile (one flag read for the folder), not by an event reconcile', async () => {
    const remote = await tempRemote();
    const dt = xoDatetime(Date.now() - HOUR);
    const backup = await writeVmBackup(remote.root, {
      datetime: dt,
      disks: [{ type: 'flat' }, { type: 'vhd-directory' }],
    });
    for (const unit of backup.units)
      await indexAsLocked(remote.indexPath, unit, { json: backup.label, instant: parseBackupDatetime(dt)! });
    const folder = leaf(remote, 'vm', path.dirname(backup.label));
    const { flags, runs } = countingFlags();
    const options = { now: Date.now(), jsonSettleMs: 0, flags };

    const event = await reconcileFolder(folder, options);
    expect(event.requests).toEqual([]);
    expect(runs).toEqual([]);

    const full = await reconcileFolder(folder, { ...options, full: true });
    expect(full.requests.map((r) => r.unit).sort()).toEqual([...backup.units].sort());
    expect(full.warnings?.map((w) => w.path).sort()).toEqual([...backup.units].sort());
    expect(full.warnings?.every((w) => w.security && w.reason.includes('its immutable flag is off'))).toBe(true);
    expect(runs).toHaveLength(1);
  });

  it('a config date folder indexed as locked, its flag off, is asked for again by a full reconcile', async () => {
    const remote = await tempRemote();
    const dt = xoDatetime(Date.now() - HOUR);
    const backup = await writeConfigBackup(remote.root, 'schedule', dt);
    await indexAsLocked(remote.indexPath, backup.label, { json: backup.label, instant: parseBackupDatetime(dt)! });
    const folder = leaf(remote, 'config', backup.label);
    const { flags, runs } = countingFlags();
    const options = { now: Date.now(), jsonSettleMs: 0, flags };

    expect((await reconcileFolder(folder, options)).requests).toEqual([]);
    expect(runs).toEqual([]);
    const full = await reconcileFolder(folder, { ...options, full: true });
    expect(full.requests.map((r) => r.unit)).toEqual([backup.label]);
    expect(full.warnings?.map((w) => w.path)).toEqual([backup.label]);
    expect(runs).toEqual([[backup.label]]);
  });
});
