import { randomUUID } from 'node:crypto';
import { mkdir, readdir, rename, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeVmBackup, xoDatetime, type WrittenBackup } from '../../src/demo/sample-remote.js';
import { startDaemon } from '../support/daemon.js';
import { allImmutable, immutableAmong, isFolder, tempRemote, waitFor } from '../support/remote.js';

// Hole 3 in a VDI folder: XO writes each VHD directory into `<vdi>/data/<uuid>.vhd` and its alias beside `data/`.
// The attacker (XO's credentials) moves `data/` to a dot name and leaves a link under the old name; XO follows it
// and writes its next VHD directories behind it. The daemon settles the link as it does one level up.
const JOB = 'a1b2c3d4-0000-4000-8000-000000000001';

// XO's next backup of the same disk: the VHD directory through `data/`, then its alias, then the json.
async function nextBackup(vm: string, vdi: string, datetime: string): Promise<string[]> {
  const folder = path.join(vm, 'vdis', JOB, vdi);
  const name = `${randomUUID()}.vhd`;
  const vhd = path.join(folder, 'data', name);
  await mkdir(path.join(vhd, 'blocks', '0'), { recursive: true });
  await writeFile(path.join(vhd, 'blocks', '0', '0'), Buffer.alloc(512, 1));
  for (const part of ['chunk-filters.json', 'bat', 'footer', 'header']) await writeFile(path.join(vhd, part), part);
  const alias = path.join(folder, `${datetime}.alias.vhd`);
  await writeFile(alias, `data/${name}`);
  const json = path.join(vm, `${datetime}.json`);
  const vhds = { [vdi]: `vdis/${JOB}/${vdi}/${datetime}.alias.vhd` };
  await writeFile(json, JSON.stringify({ jobId: JOB, mode: 'delta', timestamp: Date.now(), vhds }));
  return [alias, vhd, json];
}

// A first backup of one disk (a VHD directory in data/), written and locked; its VDI folder and data/.
async function firstBackupLocked(
  root: string,
): Promise<{ vm: string; first: WrittenBackup; vdi: string; data: string }> {
  const vm = path.join(root, 'xo-vm-backups', 'vm-1');
  const first = await writeVmBackup(root, {
    vm: 'vm-1',
    datetime: xoDatetime(Date.now() - 120_000),
    disks: [{ type: 'legacy-vhd-directory' }],
  });
  await waitFor(() => allImmutable(first.units), 'the first backup to be locked');
  const [vdi] = await readdir(path.join(vm, 'vdis', JOB));
  return { vm, first, vdi: vdi!, data: path.join(vm, 'vdis', JOB, vdi!, 'data') };
}

describe("a link in place of a VDI folder's data/", () => {
  const cases: [string, (data: string) => Promise<void>, boolean][] = [
    [
      'relative link to a dot folder beside it: the folder is put back',
      async (data) => {
        await rename(data, path.join(path.dirname(data), '.data'));
        await symlink('.data', data);
      },
      true,
    ],
    [
      'absolute link: an empty folder is made in its place',
      async (data) => {
        const hidden = path.join(path.dirname(data), '.data');
        await rename(data, hidden);
        await symlink(hidden, data);
      },
      false,
    ],
  ];

  for (const [what, attack, putBack] of cases)
    it(`${what}, and XO's next backup is locked`, async () => {
      const remote = await tempRemote();
      await startDaemon(remote, { config: { rescanEveryMs: 1_000 } });
      const { vm, first, vdi, data } = await firstBackupLocked(remote.root);
      await attack(data);
      await waitFor(() => isFolder(data), 'the link to be settled', 30_000);
      // Put back: the first backup's VHD directory is where its alias says, still locked.
      const firstVhd = first.units.find((u) => u.includes(`${path.sep}data${path.sep}`))!;
      expect(isFolder(firstVhd)).toBe(putBack);
      const next = await nextBackup(vm, vdi, xoDatetime(Date.now() - 60_000));
      await waitFor(
        () => allImmutable(next),
        () => `the backup XO wrote in ${data} to be locked: ${immutableAmong(next).length}/${next.length}`,
        15_000,
      );
      const aside = (await readdir(path.dirname(data))).filter((n) => n.startsWith('.data.linked-'));
      expect(aside).toHaveLength(1);
    }, 60_000);

  it('the watcher alone (no scan): settled when XO writes its next json, and that backup is locked', async () => {
    const remote = await tempRemote();
    await startDaemon(remote);
    const { vm, first, vdi, data } = await firstBackupLocked(remote.root);
    await rename(data, path.join(path.dirname(data), '.data'));
    await symlink('.data', data);
    const next = await nextBackup(vm, vdi, xoDatetime(Date.now() - 60_000));
    await waitFor(
      () => allImmutable(next),
      () => `the backup XO wrote behind the link to be locked: ${immutableAmong(next).length}/${next.length}`,
      15_000,
    );
    expect(isFolder(data)).toBe(true);
    expect(allImmutable(first.units)).toBe(true);
  }, 60_000);

  it("XO writes behind the link before it is seen: put back, that backup is locked where XO's alias says", async () => {
    const remote = await tempRemote();
    const vm = path.join(remote.root, 'xo-vm-backups', 'vm-1');
    const first = await writeVmBackup(remote.root, {
      vm: 'vm-1',
      datetime: xoDatetime(Date.now() - 180_000),
      disks: [{ type: 'legacy-vhd-directory' }],
    });
    const [vdi] = await readdir(path.join(vm, 'vdis', JOB));
    const data = path.join(vm, 'vdis', JOB, vdi!, 'data');
    await rename(data, path.join(path.dirname(data), '.data'));
    await symlink('.data', data);
    const next = await nextBackup(vm, vdi!, xoDatetime(Date.now() - 60_000));
    // The daemon starts after both: its catch-up meets the link.
    await startDaemon(remote, { config: { rescanEveryMs: 1_000 } });
    await waitFor(
      () => allImmutable([...first.units, ...next]),
      () => `both backups to be locked: ${immutableAmong([...first.units, ...next]).length}`,
      30_000,
    );
    expect(isFolder(data)).toBe(true);
  }, 60_000);
});
