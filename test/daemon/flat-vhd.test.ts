import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import type { DaemonStatus } from '../../src/status/daemon-status.js';
import { startDaemon } from '../support/daemon.js';
import { tempRemote, waitFor } from '../support/remote.js';

async function daemonStatus(indexPath: string): Promise<DaemonStatus | undefined> {
  return JSON.parse(await readFile(path.join(indexPath, 'status.json'), 'utf8').catch(() => 'null')) as
    DaemonStatus | undefined;
}

describe('a remote storing flat VHDs', () => {
  it('is named at start and in status: XO cannot restore its locked backups in place', async () => {
    const remote = await tempRemote();
    await writeVmBackup(remote.root, { vm: 'flat', datetime: xoDatetime(Date.now()), disks: [{ type: 'flat' }] });
    await writeVmBackup(remote.root, {
      vm: 'dirs',
      datetime: xoDatetime(Date.now()),
      disks: [{ type: 'vhd-directory' }],
    });
    const { logs } = await startDaemon(remote, { healthCheckEveryMs: 100 });
    await waitFor(() => logs.some((l) => l.msg.includes('store flat .vhd files')), 'the start-up warning');
    expect(logs.find((l) => l.msg.includes('store flat .vhd files'))).toMatchObject({ level: 'warn', vms: 1 });
    expect(logs.find((l) => l.msg.includes('store flat .vhd files'))?.msg).toContain('stage-restore');
    await waitFor(async () => (await daemonStatus(remote.indexPath))?.remotes[0]?.vmsWithFlatVhds === 1, 'status');
  });
});
