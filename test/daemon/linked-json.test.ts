import { symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { runStatus } from '../../src/cli/status.js';
import { systemClock } from '../../src/clock.js';
import { openRemoteContext } from '../../src/context/open.js';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { verifyRemote } from '../../src/verify/verify.js';
import { DAY, startDaemon } from '../support/daemon.js';
import { allImmutable, isImmutable, tempFolder, tempRemote, waitFor, writeConfigFile } from '../support/remote.js';

// XO writes a backup's json in place (outputFile), never a link: a json that is a symbolic link was planted. It is
// never followed nor locked, and it is said: a security warning, counted by `status`, a finding of `verify`.
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

    const config = await writeConfigFile(remote);
    let lines: string[] = [];
    await waitFor(
      async () => {
        lines = [];
        const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l) };
        await runStatus({ config, json: false }, io, systemClock);
        const counted = lines.map((l) => /^problems: .* (\d+) security warning\(s\) since start/.exec(l)?.[1]);
        return counted.some((n) => n !== undefined && Number(n) >= 1);
      },
      () => `status to count the warning: ${lines.join('\n')}`,
    );
    await running.daemon.stop();

    const context = await openRemoteContext(running.config.remotes[0]!, running.config.indexPath);
    const { findings } = await verifyRemote(context, new IoctlAdapter(), { now: Date.now(), jsonSettleMs: 5_000 });
    expect(findings).toEqual([expect.objectContaining({ kind: 'refused', path: link })]);
    expect(isImmutable(target)).toBe(false);
  });
});
