import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import type { DaemonStatus } from '../../src/status/daemon-status.js';
import { startDaemon } from '../support/daemon.js';
import { mountFilesystem } from '../support/filesystems.js';
import { allImmutable, tempFolder, waitFor } from '../support/remote.js';

async function status(indexPath: string): Promise<Partial<DaemonStatus> & { remotes: DaemonStatus['remotes'] }> {
  return JSON.parse(
    await readFile(path.join(indexPath, 'status.json'), 'utf8').catch(() => '{"remotes":[]}'),
  ) as DaemonStatus;
}

describe('a remote that goes away', () => {
  it('pauses loudly, writes nothing on the folder underneath, and locks what was written meanwhile once it is back', async () => {
    const root = await mountFilesystem('ext4');
    const image = path.join(path.dirname(root), 'image');
    const indexPath = path.join(await tempFolder(), 'index');
    const { logs, daemon } = await startDaemon(
      { base: path.dirname(root), root, indexPath },
      { healthCheckEveryMs: 100 },
    );
    const before = await writeVmBackup(root, { vm: 'vm', datetime: xoDatetime(Date.now()) });
    await waitFor(() => allImmutable(before.units), 'the first backup to be locked');

    // The export goes away: the mount point is an empty folder of the filesystem underneath.
    execFileSync('umount', [root]);
    await waitFor(
      () => logs.some((l) => l.level === 'error' && l.msg.startsWith('remote r is unavailable')),
      'the outage to be logged',
    );
    await waitFor(
      async () => (await status(indexPath)).remotes[0]?.healthy === false,
      'status.json to show the remote unhealthy',
    );
    expect((await status(indexPath)).remotes[0]?.problem).toContain('is the remote mounted?');
    // XO writes a backup elsewhere meanwhile (the remote mounted on another path).
    const elsewhere = path.join(await tempFolder(), 'elsewhere');
    await mkdir(elsewhere);
    execFileSync('mount', ['-o', 'loop', image, elsewhere]);
    const during = await writeVmBackup(elsewhere, { vm: 'vm-during', datetime: xoDatetime(Date.now()) });
    execFileSync('umount', [elsewhere]);
    // Two more health checks (status.json is rewritten after each): the paused daemon had its turns to write there.
    for (let check = 0; check < 2; check++) {
      const seen = (await status(indexPath)).heartbeat;
      await waitFor(async () => (await status(indexPath)).heartbeat !== seen, 'the next health check');
    }
    expect(await readdir(root)).toEqual([]);

    execFileSync('mount', ['-o', 'loop', image, root]);
    await waitFor(() => logs.some((l) => l.msg.startsWith('remote r is back')), 'the return to be logged');
    await waitFor(
      async () => (await status(indexPath)).remotes[0]?.healthy === true,
      'status.json to show the remote healthy again',
    );
    const relocated = during.units.map((u) => path.join(root, path.relative(elsewhere, u)));
    await waitFor(() => allImmutable(relocated), 'the backup written during the outage to be locked');
    // And events work again.
    const after = await writeVmBackup(root, { vm: 'vm-after', datetime: xoDatetime(Date.now()) });
    await waitFor(() => allImmutable(after.units), 'a backup written after the return to be locked');
    await daemon.stop();

    // Restarted while the remote is unmounted: refused, and nothing written on the empty mount point.
    execFileSync('umount', [root]);
    await expect(startDaemon({ base: path.dirname(root), root, indexPath })).rejects.toMatchObject({
      code: 'REMOTE_NOT_FOUND',
    });
    expect(await readdir(root)).toEqual([]);
    execFileSync('mount', ['-o', 'loop', image, root]);
  });
});
