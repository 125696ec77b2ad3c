import { describe, expect, it } from 'vitest';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { runCli } from '../support/cli.js';
import { startDaemon } from '../support/daemon.js';
import {
  allImmutable,
  filesBelow,
  immutableAmong,
  isImmutable,
  tempRemote,
  waitFor,
  writeConfigFile,
} from '../support/remote.js';
import { killInsideDirectoryUnit } from '../support/processes.js';

const HOUR = 3_600_000;

// `hold start` killed while its flag helper is inside a VHD directory: the helper clears a directory's entries before
// the directory itself, so the top folder stays immutable, its ctime and entry unchanged, above a mutable block.
describe('a repair lift killed part-way through a VHD directory', () => {
  it('is not taken for locked: status does not count it, and the hold end locks the whole tree again', async () => {
    const remote = await tempRemote();
    const config = await writeConfigFile(remote);
    const vm = '0b6a3d3e-1c1f-4c8e-9d43-2f6a1e7b9c11';
    const backup = await writeVmBackup(remote.root, {
      vm,
      datetime: xoDatetime(Date.now() - HOUR),
      disks: [{ type: 'vhd-directory', blocks: 4 }],
    });
    const directory = backup.units.find((unit) => unit.endsWith('.vhd') && !unit.endsWith('.alias.vhd'))!;
    const json = backup.units.find((unit) => unit.endsWith('.json'))!;
    const running = await startDaemon(remote);
    await waitFor(async () => allImmutable([...backup.units, ...(await filesBelow(directory))]), 'the backup locked');

    // The command dies inside the VHD directory (a crash, kill -9), and its helper with it.
    await killInsideDirectoryUnit([
      'hold',
      'start',
      '--config',
      config,
      '--remote',
      'r',
      '--vm',
      vm,
      '--for',
      '1h',
      '--yes',
    ]);
    const below = await filesBelow(directory);
    expect(isImmutable(directory)).toBe(true);
    expect(immutableAmong(below).length).toBeLessThan(below.length);

    // Held, part of it writable: no restore point of the VM is counted protected.
    const status = await runCli(['status', '--config', config, '--json']);
    const report = JSON.parse(status.stdout) as {
      remotes: { restorePoints: { protected: number; vms: { vm: string; unprotected: { reason: string }[] }[] } }[];
    };
    expect(report.remotes[0]!.restorePoints.protected).toBe(0);
    expect(report.remotes[0]!.restorePoints.vms.find((v) => v.vm === vm)?.unprotected).toMatchObject([
      { reason: 'unit-unlocked' },
    ]);

    const ended = await runCli(['hold', 'end', '--config', config, '--remote', 'r', '--vm', vm]);
    expect(ended.status, ended.stderr).toBe(0);
    await waitFor(() => isImmutable(json), 'the json to be locked again');
    await waitFor(
      async () => allImmutable([directory, ...(await filesBelow(directory))]),
      'every file of the VHD directory to be locked again',
      20_000,
    );
    const after = JSON.parse((await runCli(['status', '--config', config, '--json'])).stdout) as typeof report;
    // Locked again, whole: what is left is only that the sample VHD's chain cannot be read.
    expect(after.remotes[0]!.restorePoints.vms.find((v) => v.vm === vm)?.unprotected).toMatchObject([
      { reason: 'chain-unknown' },
    ]);
    expect(running.logs.some((l) => l.msg.includes(`the hold on VM ${vm} of remote r was ended early`))).toBe(true);
  }, 90_000);
});
