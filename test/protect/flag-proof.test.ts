import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Within } from '../../src/attributes/adapter.js';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { writeConfigBackup, writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { IndexStore } from '../../src/index/store.js';
import { parseBackupDatetime } from '../../src/remote/datetime.js';
import type { LeafFolder } from '../../src/protect/context.js';
import { relockFlagsOff } from '../../src/protect/flag-proof.js';
import { reconcileFolder } from '../../src/protect/reconcile.js';
import { indexAsLocked } from '../support/index-entry.js';
import { tempRemote, type TestRemote } from '../support/remote.js';
import { remoteContextOf } from '../support/remote-context.js';

const HOUR = 3_600_000;

// The real flag helper, counting its runs: the full proof must read flags in one run per round, event reconciles not.
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
    remote: remoteContextOf(remote.root, index),
    kind,
    path: folderPath,
  };
}

describe('units indexed as locked with their flag off', () => {
  it('are asked for again after a full reconcile (one flag read for the round), not after an event reconcile', async () => {
    const remote = await tempRemote();
    const dt = xoDatetime(Date.now() - HOUR);
    const backup = await writeVmBackup(remote.root, {
      datetime: dt,
      disks: [{ type: 'flat' }, { type: 'vhd-directory' }],
    });
    const config = await writeConfigBackup(remote.root, 'schedule', dt);
    const instant = parseBackupDatetime(dt)!;
    for (const unit of backup.units) await indexAsLocked(remote.indexPath, unit, { json: backup.label, instant });
    await indexAsLocked(remote.indexPath, config.label, { json: config.label, instant });
    const vm = leaf(remote, 'vm', path.dirname(backup.label));
    const date = leaf(remote, 'config', config.label);
    const { flags, runs } = countingFlags();
    const options = { now: Date.now(), jsonSettleMs: 0 };

    const events = [
      { folder: vm, report: await reconcileFolder(vm, options) },
      { folder: date, report: await reconcileFolder(date, options) },
    ];
    expect(events.flatMap((e) => e.report.requests)).toEqual([]);
    expect(await relockFlagsOff(events, flags)).toEqual([]);
    expect(runs).toEqual([]);

    const full = [
      { folder: vm, report: await reconcileFolder(vm, { ...options, full: true }) },
      { folder: date, report: await reconcileFolder(date, { ...options, full: true }) },
    ];
    expect(full.flatMap((e) => e.report.requests)).toEqual([]);
    const found = await relockFlagsOff(full, flags);
    // Both folders' flags in one helper run.
    expect(runs).toHaveLength(1);
    expect(runs[0]!.sort()).toEqual([...backup.units, config.label].sort());
    const vmFound = found.find((f) => f.folder === vm)!;
    const dateFound = found.find((f) => f.folder === date)!;
    expect(found).toHaveLength(2);
    expect(vmFound.requests.map((r) => r.unit).sort()).toEqual([...backup.units].sort());
    expect(vmFound.warnings.map((w) => w.path).sort()).toEqual([...backup.units].sort());
    expect(vmFound.warnings.every((w) => w.security && w.reason.includes('its immutable flag is off'))).toBe(true);
    expect(vmFound.refusals).toEqual([]);
    expect(dateFound.requests.map((r) => r.unit)).toEqual([config.label]);
    expect(dateFound.warnings.map((w) => w.path)).toEqual([config.label]);
  });
});
