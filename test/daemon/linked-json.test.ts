import { symlink, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { runStatus } from '../../src/cli/status.js';
import { systemClock } from '../../src/clock.js';
import { openRemoteContext } from '../../src/context/open.js';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import type { RemoteStatus, StatusReport } from '../../src/status/report.js';
import { verifyRemote } from '../../src/verify/verify.js';
import { DAY, startDaemon } from '../support/daemon.js';
import { allImmutable, isImmutable, tempFolder, tempRemote, waitFor, writeConfigFile } from '../support/remote.js';

// XO writes a backup's json in place (outputFile), never a link: a json that is a symbolic link was planted. It is
// never followed nor locked, and it is said: a security warning, a problem of its VM folder in `status` while it is
// there, a finding of `verify`.
describe('a VM backup json that is a symbolic link', () => {
  it('is not followed, and the daemon, status and verify name it', async () => {
    const remote = await tempRemote();
    const outside = await tempFolder('xo-immutable-outside-');
    const target = path.join(outside, 'victim.json');
    await writeFile(target, '{}');
    const real = await writeVmBackup(remote.root, { vm: 'vm', datetime: xoDatetime(Date.now() - 2 * DAY) });
    const link = path.join(remote.root, 'xo-vm-backups', 'vm', `${xoDatetime(Date.now() - DAY)}.json`);
    await symlink(target, link);

    const running = await startDaemon(remote, { healthCheckEveryMs: 50 });
    expect(allImmutable(real.units)).toBe(true);
    // Said at each look at the folder (the catch-up, the full proof after start), as every refusal is.
    const warnings = running.logs.filter((l) => l.security === true && l.path === link);
    expect(warnings.length).toBeGreaterThan(0);
    for (const warning of warnings) {
      expect(warning.msg).toMatch(/not followed and not locked/);
      expect(warning.msg).toMatch(/remove the link/);
    }
    expect(isImmutable(target)).toBe(false);

    // status names the VM folder's problem while it lasts, beside the count of security warnings.
    const config = await writeConfigFile(remote);
    const status = async (json: boolean): Promise<string[]> => {
      const lines: string[] = [];
      await runStatus({ config, json }, { out: (l) => lines.push(l), err: (l) => lines.push(l) }, systemClock);
      return lines;
    };
    const remoteStatus = async (): Promise<RemoteStatus> =>
      (JSON.parse((await status(true)).join('\n')) as StatusReport).remotes[0]!;
    await waitFor(async () => (await remoteStatus()).vmsWithPlantedLinks === 1, 'status to count the VM folder');
    expect((await status(true)).join('\n')).toMatch(/"securityWarningsSinceStart": [1-9]/);
    expect((await status(false)).join('\n')).toMatch(/1 VM folder\(s\) hold links or other entries XO never writes/);

    const context = await openRemoteContext(running.config.remotes[0]!, running.config.indexPath);
    const { findings } = await verifyRemote(context, new IoctlAdapter(), { now: Date.now(), jsonSettleMs: 5_000 });
    expect(findings).toEqual([expect.objectContaining({ kind: 'refused', path: link })]);
    expect(isImmutable(target)).toBe(false);

    // Removed: the next look at the folder (its event) finds nothing to say any more.
    await unlink(link);
    await waitFor(async () => (await remoteStatus()).vmsWithPlantedLinks === 0, 'status to forget the VM folder');
    expect((await status(false)).join('\n')).not.toMatch(/other entries XO never writes/);
  });
});
