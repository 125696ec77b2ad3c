import { lstatSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeVmBackup, xoDatetime, type WrittenBackup } from '../../src/demo/sample-remote.js';
import { DAY, startDaemon } from '../support/daemon.js';
import { allImmutable, tempRemote, waitFor } from '../support/remote.js';

describe('start-up catch-up', () => {
  it('locks first what XO wrote last while the daemon was stopped, then everything else', async () => {
    const remote = await tempRemote();
    const written: WrittenBackup[] = [];
    for (const vm of ['vm-a', 'vm-b', 'vm-c', 'vm-d'])
      written.push(await writeVmBackup(remote.root, { vm, datetime: xoDatetime(Date.now() - 2 * DAY) }));
    // The folder the listing gives last gets the newest backup, once the clock has moved past every folder's change.
    const vmTree = path.join(remote.root, 'xo-vm-backups');
    const listedLast = readdirSync(vmTree).at(-1)!;
    const changed = Math.max(...readdirSync(vmTree).map((vm) => lstatSync(path.join(vmTree, vm)).ctimeMs));
    await waitFor(() => Date.now() > changed + 20, 'the clock to move on');
    written.push(await writeVmBackup(remote.root, { vm: listedLast, datetime: xoDatetime(Date.now() - DAY) }));

    const { logs } = await startDaemon(remote);
    expect(allImmutable(written.flatMap((b) => b.units))).toBe(true);
    const locked = logs.filter((l) => l.msg.startsWith('locked vm backup')).map((l) => l.backup as string);
    expect(locked).toHaveLength(written.length);
    expect(path.basename(path.dirname(locked[0]!))).toBe(listedLast);
  });
});
