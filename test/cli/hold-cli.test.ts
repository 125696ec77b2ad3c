import { describe, expect, it } from 'vitest';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { runCli } from '../support/cli.js';
import { startDaemon } from '../support/daemon.js';
import { allImmutable, isImmutable, tempRemote, waitFor, writeConfigFile } from '../support/remote.js';

const HOUR = 3_600_000;

interface Listed {
  remotes: { remote: string; holds: { vm: string; reason: string | null; ended: boolean; acknowledged: boolean }[] }[];
}

describe('xo-immutable-backups hold start|end|list', () => {
  it('holds a VM beside a running daemon, lists the hold, and ends it; the daemon locks the VM again', async () => {
    const remote = await tempRemote();
    const config = await writeConfigFile(remote);
    const vm = '0b6a3d3e-1c1f-4c8e-9d43-2f6a1e7b9c21';
    const units = (await writeVmBackup(remote.root, { vm, datetime: xoDatetime(Date.now() - HOUR) })).units;
    await startDaemon(remote);
    await waitFor(() => allImmutable(units), 'the backup to be locked');

    const none = await runCli(['hold', 'list', '--config', config]);
    expect(none.stdout.trim()).toBe('remote r: no VM held');
    expect(none.status).toBe(0);

    const started = await runCli([
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
      '--reason',
      'restore in place',
      '--yes',
    ]);
    expect(started.status, started.stderr).toBe(0);
    expect(started.stderr).toContain('acknowledged the hold');
    expect(started.stdout).toContain(`unlocked ${units.length} unit(s) of VM ${vm}`);
    expect(started.stdout).toContain(`end it earlier with: hold end --remote r --vm ${vm}`);
    expect(units.some((u) => isImmutable(u))).toBe(false);

    const listed = await runCli(['hold', 'list', '--config', config, '--json']);
    expect(listed.status).toBe(0);
    expect((JSON.parse(listed.stdout) as Listed).remotes).toMatchObject([
      { remote: 'r', holds: [{ vm, reason: 'restore in place', ended: false, acknowledged: true }] },
    ]);
    const text = await runCli(['hold', 'list', '--config', config]);
    expect(text.stdout).toContain(`remote r: VM ${vm} HELD until`);
    expect(text.stdout).toContain('reason: restore in place');

    const ended = await runCli(['hold', 'end', '--config', config, '--remote', 'r', '--vm', vm]);
    expect(ended.status, ended.stderr).toBe(0);
    expect(ended.stdout).toContain(`hold on VM ${vm} ended; the running daemon`);
    await waitFor(() => allImmutable(units), 'the VM to be locked again');
    expect((await runCli(['hold', 'list', '--config', config])).stdout.trim()).toBe('remote r: no VM held');

    // The repair-lift flags of lift still work for a release, and say what to use instead.
    const old = await runCli(['lift', '--config', config, '--remote', 'r', '--vm', vm, '--end-hold']);
    expect(old.status, old.stderr).toBe(0);
    expect(old.stdout).toContain(`VM ${vm} was not held`);
    expect(old.stderr).toContain(`release; use: xo-immutable-backups hold end --remote r --vm ${vm}`);
  });

  it('refuses a bad VM, a missing option and a repair flag without --vm, each with what to do', async () => {
    const remote = await tempRemote();
    const config = await writeConfigFile(remote);
    const badVm = await runCli(['hold', 'start', '--config', config, '--remote', 'r', '--vm', '../etc', '--yes']);
    expect(badVm.status).toBe(2);
    expect(badVm.stderr).toContain('is not a VM uuid');
    expect(badVm.stderr).toContain('what to do: give the uuid of the VM');
    const noVm = await runCli(['hold', 'end', '--config', config, '--remote', 'r']);
    expect(noVm.status).toBe(2);
    expect(noVm.stderr).toContain("required option '--vm <uuid>' not specified");
    const tooLong = await runCli([
      'hold',
      'start',
      '--config',
      config,
      '--remote',
      'r',
      '--vm',
      '0b6a3d3e-1c1f-4c8e-9d43-2f6a1e7b9c22',
      '--for',
      '8d',
      '--yes',
    ]);
    expect(tooLong.status).toBe(2);
    expect(tooLong.stderr).toContain('--for "8d" is not a duration of at most 7 days');
    const stray = await runCli(['lift', '--config', config, '--backup', '20261122T061500Z']);
    expect(stray.status).toBe(2);
    expect(stray.stderr).toContain('--backup goes with --vm');
    expect(stray.stderr).toContain('hold start --remote ID --vm UUID');
  });
});
