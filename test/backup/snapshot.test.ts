import { mkdir, rename, symlink } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readVmSnapshot, vmFolders } from '../../src/backup/snapshot.js';
import { backupsOf, unitsOf } from '../../src/backup/vm.js';
import { xoDatetime } from '../../src/demo/sample-remote.js';
import { HeldRemote, withHeldRemote } from '../../src/remote/held.js';
import { DAY } from '../support/daemon.js';
import { tempRemote } from '../support/remote.js';
import { JOB, writeVhdChain } from '../support/vhd-chain.js';

// One read of a VM folder through a held remote, on a real filesystem, as vhd-lib lays a chain out.
describe('readVmSnapshot', () => {
  it('reads the jsons, alias targets and parent links a chain needs, once', async () => {
    const remote = await tempRemote();
    const now = Date.now();
    const chain = await writeVhdChain(
      remote.root,
      'vm',
      'vdi',
      [3, 2, 1].map((d) => xoDatetime(now - d * DAY)),
    );
    await mkdir(path.join(remote.root, 'xo-vm-backups', '.tmp-vm'));
    const root = { root: remote.root, realRoot: remote.root };
    const snapshot = await withHeldRemote(root, async (held) => {
      expect(vmFolders(held)).toEqual(['vm']);
      return readVmSnapshot(held, 'vm', false);
    });
    const vdi = `vdis/${JOB}/vdi`;
    expect(snapshot).toMatchObject({ found: true, problems: [] });
    expect([...snapshot.links.values()].map((l) => l.kind)).toEqual(['base', 'delta', 'delta']);
    expect(snapshot.aliases.get(`${vdi}/${chain[2]!.datetime}.alias.vhd`)).toEqual({
      path: `${vdi}/data/${chain[2]!.datetime}.vhd`,
      type: 'directory',
    });
    const newest = backupsOf(snapshot)[2]!;
    expect(unitsOf(snapshot, newest)).toMatchObject({ chainKnown: true });
    expect(unitsOf(snapshot, newest).chain).toHaveLength(4);
  });

  it('names a VDI folder swapped for a symbolic link, and reads nothing through it', async () => {
    const remote = await tempRemote();
    const [backup] = await writeVhdChain(remote.root, 'vm', 'vdi', [xoDatetime(Date.now() - DAY)]);
    const vdi = path.dirname(backup!.alias);
    const outside = path.join(remote.base, 'outside');
    await rename(vdi, outside);
    await symlink(outside, vdi);
    const held = HeldRemote.open({ root: remote.root, realRoot: remote.root });
    try {
      const snapshot = await readVmSnapshot(held, 'vm', false);
      expect(snapshot.problems).toEqual([
        { path: `xo-vm-backups/vm/vdis/${JOB}/vdi`, reason: 'a symbolic link where XO writes a folder' },
      ]);
      expect(snapshot.vdis).toEqual([]);
      expect(snapshot.links.size).toBe(0);
      // Its json still names the alias: missing where XO writes it.
      expect(unitsOf(snapshot, backupsOf(snapshot)[0]!).missing).toEqual([
        `vdis/${JOB}/vdi/${backup!.datetime}.alias.vhd`,
      ]);
    } finally {
      held.close();
    }
  });

  it("still names an alias's target behind a data/ folder swapped for a link, so the reconcile meets the link", async () => {
    const remote = await tempRemote();
    const [backup] = await writeVhdChain(remote.root, 'vm', 'vdi', [xoDatetime(Date.now() - DAY)]);
    const data = path.join(path.dirname(backup!.alias), 'data');
    const outside = path.join(remote.base, 'outside-data');
    await rename(data, outside);
    await symlink(outside, data);
    const snapshot = await withHeldRemote({ root: remote.root, realRoot: remote.root }, (held) =>
      readVmSnapshot(held, 'vm', false),
    );
    // Not dropped (an unclaimed VHD directory): claimed, and refused where it is examined (protect/reconcile.ts).
    expect(snapshot.aliases.get(`vdis/${JOB}/vdi/${backup!.datetime}.alias.vhd`)).toEqual({
      path: `vdis/${JOB}/vdi/data/${backup!.datetime}.vhd`,
      type: 'other',
    });
  });

  it('says a VM folder that is missing, or is a link, is not found', async () => {
    const remote = await tempRemote();
    await mkdir(path.join(remote.root, 'xo-vm-backups'));
    await symlink(remote.base, path.join(remote.root, 'xo-vm-backups', 'linked'));
    await withHeldRemote({ root: remote.root, realRoot: remote.root }, async (held) => {
      expect(await readVmSnapshot(held, 'absent', false)).toMatchObject({ found: false, problems: [] });
      expect(await readVmSnapshot(held, 'linked', false)).toMatchObject({
        found: false,
        problems: [{ path: 'xo-vm-backups/linked', reason: 'a symbolic link' }],
      });
      expect(vmFolders(held)).toEqual([]);
    });
  });
});
