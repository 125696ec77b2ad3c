import { readFile, rename, symlink } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { startDaemon, type LogLine } from '../support/daemon.js';
import { allImmutable, tempRemote, waitFor } from '../support/remote.js';

// Someone holding XO's credentials moves a (mutable) folder where XO writes to a name the daemon never looks at, and
// leaves a relative symbolic link under its old name. XO follows it (NFS resolves it on the client) and writes every
// new backup behind it; the daemon never follows a link, so none of them is locked (session 16's review). It stays
// so until an admin puts the folder back; until then it is said at every look: a security warning naming the link,
// and a coverage gap in the metrics (XoImmutableCoverageGap, XoImmutableSecurityWarnings).

function saidOf(logs: readonly LogLine[], link: string): string[] {
  return logs.filter((l) => l.security === true && l.path === link).map((l) => l.msg);
}

describe('a symbolic link where XO writes a folder', () => {
  for (const [what, moved] of [
    ['a VM folder', (root: string) => path.join(root, 'xo-vm-backups', 'vm-1')],
    ['xo-vm-backups itself', (root: string) => path.join(root, 'xo-vm-backups')],
  ] as const)
    it(`${what}, made a link to a dot name: said at each look as a security warning and a coverage gap`, async () => {
      const remote = await tempRemote();
      const metricsFile = path.join(remote.base, 'xo-immutable-backups.prom');
      const { logs } = await startDaemon(remote, {
        config: { rescanEveryMs: 500, metricsFile },
        healthCheckEveryMs: 500,
      });
      const first = await writeVmBackup(remote.root, { vm: 'vm-1', datetime: xoDatetime(Date.now() - 60_000) });
      await waitFor(() => allImmutable(first.units), 'the first backup to be locked');

      const link = moved(remote.root);
      const hidden = path.join(path.dirname(link), `.${path.basename(link)}`);
      await rename(link, hidden);
      await symlink(path.basename(hidden), link);

      await waitFor(() => saidOf(logs, link).length >= 2, 'the link to be said at two looks', 15_000);
      expect(saidOf(logs, link)[0]).toMatch(/symbolic link where XO writes a folder.*nothing is locked/);
      await waitFor(
        async () => /^xo_immutable_backups_coverage_gaps [1-9]/m.test(await readFile(metricsFile, 'utf8')),
        'the metrics to count the link as a coverage gap',
        15_000,
      );
    });

  it('is no longer said once the real folder is back, and what XO wrote meanwhile is locked', async () => {
    const remote = await tempRemote();
    const { logs } = await startDaemon(remote, { config: { rescanEveryMs: 500 } });
    const vms = path.join(remote.root, 'xo-vm-backups');
    await writeVmBackup(remote.root, { vm: 'vm-1', datetime: xoDatetime(Date.now() - 60_000) });
    const link = path.join(vms, 'vm-1');
    await rename(link, path.join(vms, '.vm-1'));
    await symlink('.vm-1', link);
    await waitFor(() => saidOf(logs, link).length > 0, 'the link to be said');
    // XO writes through the link; then the admin puts the folder back.
    const meanwhile = await writeVmBackup(remote.root, { vm: 'vm-1', datetime: xoDatetime(Date.now()) });
    const { rm } = await import('node:fs/promises');
    await rm(link);
    await rename(path.join(vms, '.vm-1'), link);
    await waitFor(() => allImmutable(meanwhile.units), 'the backup written through the link to be locked');
    const said = saidOf(logs, link).length;
    const looks = logs.filter((l) => /reconciled/.test(l.msg)).length;
    await waitFor(
      () => logs.filter((l) => /reconciled/.test(l.msg)).length > looks + 2,
      'two more rounds of looks',
      15_000,
    );
    expect(saidOf(logs, link).length).toBe(said);
  });
});
