import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { IndexStore } from '../../src/index/store.js';
import { liftRemote } from '../../src/lift/apply.js';
import { rebuildIndex } from '../../src/rebuild/rebuild.js';
import { DAY, startDaemon } from '../support/daemon.js';
import { isImmutable, tempRemote } from '../support/remote.js';
import { remoteContextOf } from '../support/remote-context.js';

// XO names VM folders by uuid, but the remote is hostile input: every name a filesystem allows must work end to end.
const ODD_NAMES = [
  'with space',
  'it\'s "quoted"',
  'ünïcödé-虚拟机',
  '-starts-with-dash',
  'new\nline',
  '*glob?[x]',
  'x'.repeat(255),
];

describe('odd names', () => {
  it('are locked, indexed, rebuilt and lifted like any other', async () => {
    const remote = await tempRemote();
    const t = Date.UTC(2026, 9, 1, 6, 15, 0);
    const backups = [];
    for (const vm of ODD_NAMES)
      backups.push(
        await writeVmBackup(remote.root, {
          vm,
          datetime: xoDatetime(t),
          jobId: vm === 'x'.repeat(255) ? 'j'.repeat(255) : undefined,
          disks: [{ type: 'flat' }, { type: 'vhd-directory' }],
        }),
      );
    const units = backups.flatMap((b) => b.units);
    const { daemon } = await startDaemon(remote, { clock: { now: () => t + 3600_000 } });
    await daemon.stop();
    for (const unit of units) expect(isImmutable(unit), JSON.stringify(unit)).toBe(true);
    const index = new IndexStore(remote.indexPath, 'r');
    const entries = readdirSync(path.join(remote.indexPath, 'r', '2026-10-01'));
    expect(entries).toHaveLength(ODD_NAMES.length * 4);

    // Lose the index, rebuild it from the remote alone.
    rmSync(path.join(remote.indexPath, 'r'), { recursive: true });
    await index.open();
    const context = remoteContextOf(remote.root, index);
    const rebuilt = await rebuildIndex(context, new IoctlAdapter(), { importFrom: [], now: t + DAY });
    expect(rebuilt.indexed).toHaveLength(ODD_NAMES.length * 4);
    expect(rebuilt.undated).toEqual([]);

    const report = await liftRemote(context, new IoctlAdapter(), { now: t + 8 * DAY, dryRun: false, all: false });
    expect(report.failed).toEqual([]);
    expect(report.unlocked).toHaveLength(ODD_NAMES.length * 4);
    for (const unit of units) expect(isImmutable(unit), JSON.stringify(unit)).toBe(false);
  });
});
