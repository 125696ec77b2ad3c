import { readdir, rename, symlink } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { startDaemon } from '../support/daemon.js';
import { allImmutable, immutableAmong, isFolder, tempRemote, waitFor } from '../support/remote.js';

// Session 16's hole 3 one level down, or with an absolute link: the attacker (XO's credentials) moves a mutable folder
// XO writes into to a dot name and leaves a link under its old name. XO follows the link; the daemon settles it (the
// folder put back, or an empty one made in its place), so what XO writes next is locked.
const JOB = 'a1b2c3d4-0000-4000-8000-000000000001';

describe('a link XO follows, below a VM folder or absolute', () => {
  const cases: [string, (vm: string) => Promise<string>][] = [
    [
      'vdis/ inside the VM folder, relative link',
      async (vm) => {
        await rename(path.join(vm, 'vdis'), path.join(vm, '.vdis'));
        await symlink('.vdis', path.join(vm, 'vdis'));
        return path.join(vm, 'vdis');
      },
    ],
    [
      'vdis/<job> inside the VM folder, relative link',
      async (vm) => {
        const vdis = path.join(vm, 'vdis');
        await rename(path.join(vdis, JOB), path.join(vdis, `.${JOB}`));
        await symlink(`.${JOB}`, path.join(vdis, JOB));
        return path.join(vdis, JOB);
      },
    ],
    [
      'the VM folder, absolute link (XO mounts the remote at a path its admin knows)',
      async (vm) => {
        const hidden = path.join(path.dirname(vm), `.${path.basename(vm)}`);
        await rename(vm, hidden);
        await symlink(hidden, vm);
        return vm;
      },
    ],
    [
      'the VM folder, relative link to a dot folder inside another VM folder',
      async (vm) => {
        const vms = path.dirname(vm);
        await writeVmBackup(path.dirname(vms), { vm: 'vm-2', datetime: xoDatetime(Date.now() - 120_000) });
        await rename(vm, path.join(vms, 'vm-2', '.vm-1'));
        await symlink(path.join('vm-2', '.vm-1'), vm);
        return vm;
      },
    ],
  ];
  it('a link in vdis/ with a name of 240 bytes: settled, and the VM backup is still locked', async () => {
    const remote = await tempRemote();
    await startDaemon(remote, { config: { rescanEveryMs: 300 } });
    const vm = path.join(remote.root, 'xo-vm-backups', 'vm-1');
    const first = await writeVmBackup(remote.root, { vm: 'vm-1', datetime: xoDatetime(Date.now() - 120_000) });
    const long = path.join(vm, 'vdis', 'j'.repeat(240));
    await symlink('/nowhere', long);
    await waitFor(() => allImmutable(first.units), 'the backup beside the link to be locked');
    await waitFor(() => isFolder(long), 'the link to be settled');
    // Looked at again and again (a scan every 300 ms): the aside link, a dot name, is never settled in its turn.
    const looks = async (): Promise<string[]> =>
      (await readdir(path.join(vm, 'vdis'))).filter((n) => n !== 'j'.repeat(240));
    const next = await writeVmBackup(remote.root, { vm: 'vm-1', datetime: xoDatetime(Date.now() - 60_000) });
    await waitFor(() => allImmutable(next.units), 'the next backup to be locked');
    const aside = (await looks()).filter((n) => n.startsWith('.'));
    expect(aside).toHaveLength(1);
    expect(aside[0]!.startsWith('..')).toBe(false);
  }, 60_000);

  for (const [what, attack] of cases)
    it(`${what}: XO's next backup is locked`, async () => {
      const remote = await tempRemote();
      await startDaemon(remote, { config: { rescanEveryMs: 1_000 } });
      const vm = path.join(remote.root, 'xo-vm-backups', 'vm-1');
      const first = await writeVmBackup(remote.root, { vm: 'vm-1', datetime: xoDatetime(Date.now() - 120_000) });
      await waitFor(() => allImmutable(first.units), 'the first backup to be locked');
      const link = await attack(vm);
      // Settled as soon as the watcher (or a scan) sees it; then XO writes its next backup there.
      await waitFor(() => isFolder(link), 'the link to be settled', 30_000);
      const next = await writeVmBackup(remote.root, { vm: 'vm-1', datetime: xoDatetime(Date.now() - 60_000) });
      expect((await readdir(vm)).length).toBeGreaterThan(0);
      await waitFor(
        () => allImmutable(next.units),
        () =>
          `the backup XO wrote behind ${link} to be locked: ${immutableAmong(next.units).length}/${next.units.length}`,
        10_000,
      );
    }, 60_000);
});
