import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { runCli } from '../support/cli.js';
import { startDaemon, type RunningDaemon } from '../support/daemon.js';
import { allImmutable, isImmutable, tempRemote, waitFor, writeConfigFile } from '../support/remote.js';

const HOUR = 3_600_000;

const noneImmutable = (paths: readonly string[]): boolean => paths.every((p) => !isImmutable(p));

async function fullProofs(running: RunningDaemon, more: number): Promise<void> {
  const count = (): number => running.logs.filter((l) => l.msg.startsWith('full proof (periodic rescan) done')).length;
  const target = count() + more;
  await waitFor(() => count() >= target, `${more} more full proofs`);
}

describe('repair lift of one VM (lift --vm --hold) beside a running daemon', () => {
  it('unlocks the VM, which stays unlocked across rescans, a restart and a new backup, then is locked again', async () => {
    const remote = await tempRemote();
    const config = await writeConfigFile(remote);
    const vm = '0b6a3d3e-1c1f-4c8e-9d43-2f6a1e7b9c01';
    const other = '7f1e2d3c-4b5a-4968-8776-655443322110';
    const held = [
      await writeVmBackup(remote.root, { vm, datetime: xoDatetime(Date.now() - 2 * HOUR) }),
      await writeVmBackup(remote.root, {
        vm,
        datetime: xoDatetime(Date.now() - HOUR),
        disks: [{ type: 'vhd-directory' }],
      }),
    ].flatMap((b) => b.units);
    const kept = (await writeVmBackup(remote.root, { vm: other, datetime: xoDatetime(Date.now() - HOUR) })).units;
    const metricsFile = path.join(remote.base, 'metrics.prom');
    const options = { config: { rescanEveryMs: 300, metricsFile } };
    let running = await startDaemon(remote, options);
    await waitFor(() => allImmutable([...held, ...kept]), 'every backup to be locked');

    // An hour: the hold cannot end by itself while the test runs, however loaded the machine; the last daemon's clock
    // is moved past it instead.
    const lifted = await runCli(['lift', '--config', config, '--remote', 'r', '--vm', vm, '--hold', '1h', '--yes']);
    expect(lifted.stderr).toContain('acknowledged the hold');
    expect(lifted.stdout).toContain(`unlocked ${held.length} unit(s) of VM ${vm}`);
    expect(lifted.status, lifted.stderr).toBe(0);
    // The security event: one pino line from the command, one from the daemon that acknowledged it.
    expect(lifted.stderr).toMatch(/"security":true.*repair lift of VM/);
    expect(running.logs.some((l) => l.security === true && l.msg.includes(`VM ${vm} of remote r is held`))).toBe(true);
    expect(noneImmutable(held)).toBe(true);
    expect(allImmutable(kept)).toBe(true);

    await fullProofs(running, 3);
    expect(noneImmutable(held)).toBe(true);

    await running.daemon.stop();
    running = await startDaemon(remote, options);
    expect(running.logs.some((l) => l.msg.includes(`VM ${vm} of remote r is still held`))).toBe(true);
    expect(await readFile(metricsFile, 'utf8')).toContain('xo_immutable_backups_held_vms{remote="r"} 1');
    const fresh = (await writeVmBackup(remote.root, { vm, datetime: xoDatetime(Date.now()) })).units;
    const otherFresh = (await writeVmBackup(remote.root, { vm: other, datetime: xoDatetime(Date.now()) })).units;
    await waitFor(() => allImmutable(otherFresh), "the other VM's new backup to be locked");
    await fullProofs(running, 2);
    expect(noneImmutable([...held, ...fresh])).toBe(true);

    const status = await runCli(['status', '--config', config, '--json']);
    expect(status.status).toBe(1);
    const report = JSON.parse(status.stdout) as { remotes: { holds: { vm: string; until: string }[] }[] };
    expect(report.remotes[0]?.holds).toMatchObject([{ vm }]);
    const text = await runCli(['status', '--config', config]);
    expect(text.stdout).toContain(`HELD: VM ${vm} NOT PROTECTED until`);

    // The hold ends when the daemon's clock passes its end (the hold check, not the next rescan: that is an hour away
    // in the restarted daemon's config).
    await running.daemon.stop();
    let shiftMs = 0;
    running = await startDaemon(remote, {
      config: { rescanEveryMs: HOUR },
      clock: { now: () => Date.now() + shiftMs },
    });
    expect(running.logs.some((l) => l.msg.includes(`VM ${vm} of remote r is still held`))).toBe(true);
    expect(noneImmutable([...held, ...fresh])).toBe(true);
    shiftMs = HOUR + 60_000;
    await waitFor(() => allImmutable([...held, ...fresh]), 'the held VM to be locked again', 60_000);
    expect(running.logs.some((l) => l.msg.includes(`the hold on VM ${vm} of remote r has ended`))).toBe(true);
    expect(existsSync(path.join(remote.indexPath, '.holds', 'r', `${vm}.json`))).toBe(false);
  }, 90_000);

  it('ends a hold early with --end-hold; the daemon locks the VM again at once', async () => {
    const remote = await tempRemote();
    const config = await writeConfigFile(remote);
    const vm = '0b6a3d3e-1c1f-4c8e-9d43-2f6a1e7b9c02';
    const units = (await writeVmBackup(remote.root, { vm, datetime: xoDatetime(Date.now() - HOUR) })).units;
    await startDaemon(remote);
    await waitFor(() => allImmutable(units), 'the backup to be locked');
    const lifted = await runCli(['lift', '--config', config, '--remote', 'r', '--vm', vm, '--hold', '1h', '--yes']);
    expect(lifted.status, lifted.stderr).toBe(0);
    expect(noneImmutable(units)).toBe(true);

    const ended = await runCli(['lift', '--config', config, '--remote', 'r', '--vm', vm, '--end-hold']);
    expect(ended.status, ended.stderr).toBe(0);
    expect(ended.stdout).toContain(`hold on VM ${vm} ended; the running daemon`);
    await waitFor(() => allImmutable(units), 'the VM to be locked again');
  });

  it('refuses without a terminal and without --yes, and a hold over 7 days; nothing is unlocked or held', async () => {
    const remote = await tempRemote();
    const config = await writeConfigFile(remote);
    const vm = '0b6a3d3e-1c1f-4c8e-9d43-2f6a1e7b9c03';
    const units = (await writeVmBackup(remote.root, { vm, datetime: xoDatetime(Date.now() - HOUR) })).units;
    const { daemon } = await startDaemon(remote);
    await waitFor(() => allImmutable(units), 'the backup to be locked');
    await daemon.stop();

    const refused = await runCli(['lift', '--config', config, '--remote', 'r', '--vm', vm]);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain('--yes');
    const tooLong = await runCli(['lift', '--config', config, '--remote', 'r', '--vm', vm, '--hold', '8d', '--yes']);
    expect(tooLong.status).toBe(2);
    expect(tooLong.stderr).toContain('at most 7 days');
    expect(allImmutable(units)).toBe(true);
    expect(existsSync(path.join(remote.indexPath, '.holds', 'r', `${vm}.json`))).toBe(false);
  });

  it("with --backup, unlocks that backup and what it is built on, not the VM's other backups", async () => {
    const remote = await tempRemote();
    const config = await writeConfigFile(remote);
    const vm = '0b6a3d3e-1c1f-4c8e-9d43-2f6a1e7b9c04';
    const older = (await writeVmBackup(remote.root, { vm, datetime: xoDatetime(Date.now() - 2 * HOUR) })).units;
    const newerDt = xoDatetime(Date.now() - HOUR);
    const newer = (await writeVmBackup(remote.root, { vm, datetime: newerDt })).units;
    const { daemon } = await startDaemon(remote);
    await waitFor(() => allImmutable([...older, ...newer]), 'the backups to be locked');
    await daemon.stop();

    const args = ['lift', '--config', config, '--remote', 'r', '--vm', vm, '--backup', newerDt, '--yes', '--json'];
    const lifted = await runCli(args);
    expect(lifted.status, lifted.stderr).toBe(0);
    const report = JSON.parse(lifted.stdout) as { unlocked: number; hold: { backup: string } };
    expect(report).toMatchObject({ unlocked: newer.length, hold: { backup: newerDt } });
    expect(noneImmutable(newer)).toBe(true);
    expect(allImmutable(older)).toBe(true);
  });
});
