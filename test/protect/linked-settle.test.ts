import { lstatSync } from 'node:fs';
import { mkdir, rename, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { IndexStore } from '../../src/index/store.js';
import { reconcileFolder } from '../../src/protect/reconcile.js';
import { tempRemote, type TestRemote } from '../support/remote.js';
import { remoteContextOf } from '../support/remote-context.js';
import { finishVhdDirectoryBackup, vhdDirectoryPaths } from '../support/xo-writes.js';

// One reconcile of a VM folder settles every link XO would follow in it, and its report says each one (session 18's
// third review: a look after a settle dropped what the look before had said; a VM folder put back in place of a link
// was looked at once, the links inside it left to the next event).
async function reconcileVm(remote: TestRemote, linked?: true): ReturnType<typeof reconcileFolder> {
  const index = new IndexStore(remote.indexPath, 'r');
  await index.open();
  const vm = path.join(remote.root, 'xo-vm-backups', 'vm-1');
  const folder = { remote: remoteContextOf(remote.root, index), kind: 'vm' as const, path: vm, linked };
  return reconcileFolder(folder, { now: Date.now(), jsonSettleMs: 0 });
}

describe('settling links in one reconcile', () => {
  for (const secondLink of [true, false])
    it(`a blocks/<n> put back before the lock is said${secondLink ? ', with a job folder settled in the same look' : ''}`, async () => {
      const remote = await tempRemote();
      const { vm, vdi, datetime: dt, vhd } = vhdDirectoryPaths(remote.root);
      await mkdir(path.join(vhd, 'blocks', '0'), { recursive: true });
      await writeFile(path.join(vhd, 'blocks', '0', '0'), Buffer.alloc(512, 7));
      await mkdir(path.join(vdi, 'data', '.h'));
      await writeFile(path.join(vdi, 'data', '.h', '0'), Buffer.alloc(512, 7));
      await symlink(path.join('..', '..', '.h'), path.join(vhd, 'blocks', '1'));
      await finishVhdDirectoryBackup(vm, dt, undefined, ['chunk-filters.json', 'header', 'bat', 'footer']);
      const job2 = path.join(vm, 'vdis', 'a1b2c3d4-0000-4000-8000-000000000009');
      if (secondLink) {
        await mkdir(path.join(vm, '.j2'));
        await symlink('../.j2', job2);
      }

      const report = await reconcileVm(remote);

      expect(lstatSync(path.join(vhd, 'blocks', '1')).isDirectory()).toBe(true);
      const said = (report.warnings ?? []).map((w) => w.path);
      expect(said).toContain(path.join(vhd, 'blocks', '1'));
      if (secondLink) expect(said).toContain(job2);
      expect(new Set(said).size).toBe(said.length);
    });

  it('a VM folder put back in place of a link, vdis/ inside it a link too: both settled', async () => {
    const remote = await tempRemote();
    await writeVmBackup(remote.root, { vm: 'vm-1', datetime: xoDatetime(Date.now() - 120_000) });
    const tree = path.join(remote.root, 'xo-vm-backups');
    await rename(path.join(tree, 'vm-1'), path.join(tree, '.vm-1'));
    await symlink('.vm-1', path.join(tree, 'vm-1'));
    await rename(path.join(tree, '.vm-1', 'vdis'), path.join(tree, '.vm-1', '.v'));
    await symlink('.v', path.join(tree, '.vm-1', 'vdis'));

    const report = await reconcileVm(remote, true);

    const vm = path.join(tree, 'vm-1');
    expect(lstatSync(vm).isDirectory()).toBe(true);
    expect({ vdisIsLink: lstatSync(path.join(vm, 'vdis')).isSymbolicLink(), refusals: report.refusals }).toEqual({
      vdisIsLink: false,
      refusals: [],
    });
  });
});
