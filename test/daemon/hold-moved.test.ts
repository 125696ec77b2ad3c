import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { asAttacker, handRemoteToAttacker, writeAsAttacker } from '../support/attacker.js';
import { runCli } from '../support/cli.js';
import { startDaemon } from '../support/daemon.js';
import { allImmutable, isImmutable, tempRemote, waitFor, writeConfigFile } from '../support/remote.js';

const HOUR = 3_600_000;

// Hole 8 of issue 21: a repair lift of VM X must not unlock a unit of VM Y that someone holding XO's credentials
// moved into X's folder and had claimed there (every attacker step as an unprivileged user owning the remote): it keeps its own window, whichever folder claims it.
describe('repair lift of one VM (lift --vm) after a unit of another VM was moved in', () => {
  it('keeps the moved unit locked and names it; the VM own units are unlocked', async () => {
    const remote = await tempRemote();
    const config = await writeConfigFile(remote);
    const x = '0b6a3d3e-1c1f-4c8e-9d43-2f6a1e7b9c11';
    const y = '7f1e2d3c-4b5a-4968-8776-655443322111';
    const own = (await writeVmBackup(remote.root, { vm: x, datetime: xoDatetime(Date.now() - 2 * HOUR) })).units;
    const yDatetime = xoDatetime(Date.now() - HOUR);
    const foreign = await writeVmBackup(remote.root, {
      vm: y,
      datetime: yDatetime,
      disks: [{ type: 'vhd-directory' }],
    });
    await handRemoteToAttacker(remote);
    await startDaemon(remote);
    await waitFor(() => allImmutable([...own, ...foreign.units]), 'both VMs to be locked');

    // The attack: Y's VDI folder (never immutable: XO writes in it) moves into X's folder, where a json claims it.
    const alias = foreign.units.find((u) => u.endsWith('.alias.vhd'))!;
    const yVdi = path.dirname(alias);
    const relativeVdi = path.relative(path.join(remote.root, 'xo-vm-backups', y), yVdi);
    const xFolder = path.join(remote.root, 'xo-vm-backups', x);
    asAttacker('mv', ['--', yVdi, path.join(xFolder, relativeVdi)]);
    const movedAlias = path.join(xFolder, relativeVdi, path.basename(alias));
    const movedDirectory = path.join(xFolder, relativeVdi, 'data', `${yDatetime}.vhd`);
    const claim = path.join(xFolder, `${xoDatetime(Date.now() - HOUR / 2)}.json`);
    writeAsAttacker(claim, JSON.stringify({ mode: 'delta', vhds: { x: `${relativeVdi}/${path.basename(alias)}` } }));
    await waitFor(() => isImmutable(claim), 'the claiming json to be locked');

    const lifted = await runCli(['lift', '--config', config, '--remote', 'r', '--vm', x, '--hold', '1h', '--yes']);
    expect(lifted.stderr).toContain('acknowledged the hold');
    expect(allImmutable([movedAlias, movedDirectory])).toBe(true);
    expect(lifted.stdout).toContain(`NOT UNLOCKED ${movedDirectory}`);
    expect(lifted.stdout).toContain(`NOT UNLOCKED ${movedAlias}`);
    expect(lifted.status).toBe(1);
    expect(own.concat(claim).some((u) => isImmutable(u))).toBe(false);
  });
});
