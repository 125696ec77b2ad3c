import { lstat, mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { IndexStore } from '../../src/index/store.js';
import { reconcileFolder } from '../../src/protect/reconcile.js';
import { DAY } from '../support/daemon.js';
import { tempFolder, tempRemote } from '../support/remote.js';
import { remoteContextOf } from '../support/remote-context.js';

// The VM folder's own path check is the snapshot's walk through held folders (no realpath first): a link met on the
// way is still refused by name, as a security warning, and nothing is read through it.
describe('reconcileFolder on a VM folder reached through a link', () => {
  async function linked(link: (root: string, outside: string) => Promise<string>) {
    const remote = await tempRemote();
    const outside = await tempFolder('xo-immutable-outside-');
    await writeVmBackup(outside, { vm: 'victim', datetime: xoDatetime(Date.now()) });
    const folderPath = await link(remote.root, outside);
    const index = new IndexStore(remote.indexPath, 'r');
    await index.open();
    const folder = {
      remote: remoteContextOf(remote.root, index),
      kind: 'vm' as const,
      path: folderPath,
    };
    return { folder, report: await reconcileFolder(folder, { now: Date.now(), jsonSettleMs: 0 }) };
  }

  it('settles a VM folder that is a symbolic link out of the remote: an empty folder in its place, said', async () => {
    const { folder, report } = await linked(async (root, outside) => {
      await mkdir(path.join(root, 'xo-vm-backups'));
      const at = path.join(root, 'xo-vm-backups', 'linked-vm');
      await symlink(path.join(outside, 'xo-vm-backups', 'victim'), at);
      return at;
    });
    expect(report.requests).toEqual([]);
    expect(report.refusals).toEqual([]);
    expect(report.warnings).toHaveLength(1);
    expect(report.warnings![0]).toMatchObject({ path: folder.path, security: true });
    expect(report.warnings![0]!.reason).toMatch(/where XO writes a folder.*not moved \(it is absolute/);
    expect((await lstat(folder.path)).isDirectory()).toBe(true);
    expect(await readdir(folder.path)).toEqual([]);
  });

  it('refuses a VM folder below a symbolic link in place of xo-vm-backups', async () => {
    const { report } = await linked(async (root, outside) => {
      await symlink(path.join(outside, 'xo-vm-backups'), path.join(root, 'xo-vm-backups'));
      return path.join(root, 'xo-vm-backups', 'victim');
    });
    expect(report.requests).toEqual([]);
    expect(report.refusals).toHaveLength(1);
    expect(report.refusals[0]).toMatchObject({ security: true });
    expect(report.refusals[0]!.path).toContain('xo-vm-backups');
    expect(report.refusals[0]!.reason).toMatch(/symbolic link/);
  });
});

describe('reconcileFolder on a VM folder holding a json that is a symbolic link', () => {
  it('refuses the link once, follows it nowhere, and locks the real backups beside it', async () => {
    const remote = await tempRemote();
    const outside = await tempFolder('xo-immutable-outside-');
    await writeFile(path.join(outside, 'victim.json'), '{}');
    const real = await writeVmBackup(remote.root, { vm: 'vm', datetime: xoDatetime(Date.now() - 2 * DAY) });
    const link = path.join(remote.root, 'xo-vm-backups', 'vm', `${xoDatetime(Date.now() - DAY)}.json`);
    await symlink(path.join(outside, 'victim.json'), link);
    const index = new IndexStore(remote.indexPath, 'r');
    await index.open();
    const folder = {
      remote: remoteContextOf(remote.root, index),
      kind: 'vm' as const,
      path: path.join(remote.root, 'xo-vm-backups', 'vm'),
    };
    const report = await reconcileFolder(folder, { now: Date.now(), jsonSettleMs: 0 });
    expect(report.refusals).toHaveLength(1);
    expect(report.refusals[0]).toMatchObject({ path: link, security: true });
    expect(report.refusals[0]!.reason).toMatch(/^a symbolic link where XO writes a backup's json/);
    expect(report.requests.map((r) => r.unit).sort()).toEqual([...real.units].sort());
  });
});
