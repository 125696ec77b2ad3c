import { chown, mkdir, readdir, readlink, rename, symlink } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { startDaemon, type LogLine } from '../support/daemon.js';
import { allImmutable, isFolder, tempRemote, waitFor } from '../support/remote.js';

// Someone holding XO's credentials moves a (mutable) folder where XO writes to a name the daemon never looks at, and
// leaves a relative symbolic link under its old name. XO follows it (NFS resolves it on the client) and writes every
// new backup behind it, where the daemon, which never follows a link, locks nothing (session 16's review). The daemon
// now moves the link aside and puts the folder back in its place (what XO sees does not change), and says so once;
// where it may not move that folder (a link out of the remote, absolute, to another VM's folder, to a folder the link's
// maker could not have moved), an empty folder takes the link's place, so that what XO writes next is locked.

function saidOf(logs: readonly LogLine[], link: string): string[] {
  return logs.filter((l) => l.security === true && l.path === link).map((l) => l.msg);
}

async function asideLinks(folder: string, name: string): Promise<string[]> {
  return (await readdir(folder)).filter((entry) => entry.startsWith(`.${name}.linked-`));
}

describe('a symbolic link where XO writes a folder, to a folder of the remote', () => {
  for (const [what, moved] of [
    ['a VM folder', (root: string) => path.join(root, 'xo-vm-backups', 'vm-1')],
    ['xo-vm-backups itself', (root: string) => path.join(root, 'xo-vm-backups')],
  ] as const)
    it(`${what}, made a link to a dot name: the folder is put back, and what XO writes next is locked`, async () => {
      const remote = await tempRemote();
      const { logs } = await startDaemon(remote, { config: { rescanEveryMs: 60_000 } });
      const first = await writeVmBackup(remote.root, { vm: 'vm-1', datetime: xoDatetime(Date.now() - 120_000) });
      await waitFor(() => allImmutable(first.units), 'the first backup to be locked');

      const link = moved(remote.root);
      const hidden = path.join(path.dirname(link), `.${path.basename(link)}`);
      await rename(link, hidden);
      await symlink(path.basename(hidden), link);

      // Put back on the watcher's event, long before the next scan.
      await waitFor(() => saidOf(logs, link).length > 0, 'the link to be said');
      expect(saidOf(logs, link)[0]).toMatch(/symbolic link where XO writes a folder.*put back in its place/);
      await waitFor(() => isFolder(link), 'the folder to be back in its place');
      const aside = await asideLinks(path.dirname(link), path.basename(link));
      expect(aside).toHaveLength(1);
      expect(await readlink(path.join(path.dirname(link), aside[0]!))).toBe(path.basename(hidden));
      expect(allImmutable(first.units)).toBe(true);
      const next = await writeVmBackup(remote.root, { vm: 'vm-1', datetime: xoDatetime(Date.now() - 60_000) });
      await waitFor(() => allImmutable(next.units), 'the next backup to be locked');
    });

  it('with the watcher off, what XO wrote behind the link is locked at the next scan', async () => {
    const remote = await tempRemote();
    const { logs } = await startDaemon(remote, { watch: false, config: { rescanEveryMs: 500 } });
    const vms = path.join(remote.root, 'xo-vm-backups');
    await mkdir(path.join(vms, '.vm-1'), { recursive: true });
    const link = path.join(vms, 'vm-1');
    await symlink('.vm-1', link);
    // XO follows the link: the whole backup lands in .vm-1.
    const behind = await writeVmBackup(remote.root, { vm: 'vm-1', datetime: xoDatetime(Date.now() - 60_000) });
    await waitFor(() => isFolder(link), 'the folder to be put back');
    await waitFor(() => allImmutable(behind.units), 'the backup written behind the link to be locked');
    expect(saidOf(logs, link)).toHaveLength(1);
  });
});

describe('a symbolic link where XO writes a folder, to what may not be moved', () => {
  const cases: [string, (root: string, base: string) => Promise<string>][] = [
    [
      'to a folder outside the remote',
      async (_root, base) => {
        await mkdir(path.join(base, 'elsewhere'));
        return path.join('..', '..', 'elsewhere');
      },
    ],
    ['absolute (each client resolves it on its own)', async (root) => path.join(root, 'xo-vm-backups', 'vm-2')],
    ['to another VM folder', async () => 'vm-2'],
    [
      'to a folder its maker could not have moved (another owner)',
      async (root) => {
        const other = path.join(root, 'xo-vm-backups', '.not-theirs');
        await mkdir(other);
        await chown(other, 4242, 4242);
        return '.not-theirs';
      },
    ],
  ];
  for (const [what, target] of cases)
    it(`${what}: an empty folder takes its place, said once; the target stays, XO's next backup is locked`, async () => {
      const remote = await tempRemote();
      const { logs } = await startDaemon(remote, { config: { rescanEveryMs: 500 } });
      const other = await writeVmBackup(remote.root, { vm: 'vm-2', datetime: xoDatetime(Date.now() - 60_000) });
      await waitFor(() => allImmutable(other.units), 'the other VM backup to be locked');
      const vms = path.join(remote.root, 'xo-vm-backups');
      const link = path.join(vms, 'vm-1');
      const text = await target(remote.root, remote.base);
      await symlink(text, link);

      await waitFor(() => isFolder(link), "an empty folder to take the link's place");
      expect(await readdir(link)).toEqual([]);
      const aside = await asideLinks(vms, 'vm-1');
      expect(aside).toHaveLength(1);
      expect(await readlink(path.join(vms, aside[0]!))).toBe(text);
      expect(allImmutable(other.units)).toBe(true);
      const next = await writeVmBackup(remote.root, { vm: 'vm-1', datetime: xoDatetime(Date.now() - 30_000) });
      await waitFor(() => allImmutable(next.units), 'the next backup to be locked');
      // Said once, not at every look: a few more scans say nothing more.
      const looks = logs.filter((l) => /reconciled/.test(l.msg)).length;
      await waitFor(() => logs.filter((l) => /reconciled/.test(l.msg)).length > looks + 2, 'two more looks', 15_000);
      expect(saidOf(logs, link)).toHaveLength(1);
      expect(saidOf(logs, link)[0]).toMatch(/not moved \(.*\), an empty folder was made in its place/);
    });
});
