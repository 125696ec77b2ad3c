import { execFileSync } from 'node:child_process';
import { chown, lstat, mkdir, readdir, readlink, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HeldRemote } from '../../src/remote/held.js';
import { putBackLinkedFolder, putBackRefusal, type LinkTarget } from '../../src/remote/put-back.js';
import { tempRemote } from '../support/remote.js';

const owner = { uid: 1000, dev: 7 };
function target(relative: string | undefined, more: Partial<LinkTarget> & { folder?: boolean; uid?: number } = {}) {
  const stats = { isDirectory: () => more.folder ?? true, uid: more.uid ?? 1000, dev: 7, ino: 1 };
  return { relative, text: more.text ?? 'x', stats };
}

describe('whether a linked folder may be put back', () => {
  const link = 'xo-vm-backups/vm-1';
  it('a folder its maker could have moved there, outside what XO reads by name: yes', () => {
    expect(putBackRefusal(link, target('xo-vm-backups/.vm-1'), owner)).toBeUndefined();
    expect(putBackRefusal(link, target('.stash/vm-1'), owner)).toBeUndefined();
    expect(putBackRefusal('xo-vm-backups', target('.xo-vm-backups'), owner)).toBeUndefined();
  });

  for (const [what, found, reason] of [
    ['an absolute link', target('xo-vm-backups/.vm-1', { text: '/srv/remote/.vm-1' }), /absolute/],
    ['a link out of the remote', target(undefined), /outside the remote/],
    ['a file', target('xo-vm-backups/.vm-1', { folder: false }), /not a folder/],
    ['the root', target(''), /holds the link/],
    ['a folder above the link', target('xo-vm-backups'), /holds the link/],
    ['a folder of another owner', target('xo-vm-backups/.vm-1', { uid: 0 }), /owned by uid 0/],
    ['another VM folder', target('xo-vm-backups/vm-2'), /a folder of XO's own/],
    ['a folder inside a VM folder', target('xo-vm-backups/vm-2/vdis'), /inside a backup folder/],
    ['a schedule folder', target('xo-config-backups/s1'), /a folder of XO's own/],
  ] as const)
    it(`${what}: no`, () => {
      expect(putBackRefusal(link, found, owner)).toMatch(reason);
    });

  it('a folder inside the VM folder that holds the link: yes; inside another: no', () => {
    const inVdis = 'xo-vm-backups/vm-1/vdis';
    expect(putBackRefusal(inVdis, target('xo-vm-backups/vm-1/.vdis'), owner, 'xo-vm-backups/vm-1')).toBeUndefined();
    expect(putBackRefusal(inVdis, target('xo-vm-backups/vm-2/.vdis'), owner, 'xo-vm-backups/vm-1')).toMatch(
      /inside a backup folder/,
    );
  });

  it('a folder on another filesystem: no', () => {
    expect(putBackRefusal(link, target('.stash'), { uid: 1000, dev: 8 })).toMatch(/another filesystem/);
  });
});

describe('putting a linked folder back', () => {
  it('moves the folder into the link’s place and the link aside, once', async () => {
    const remote = await tempRemote();
    const vms = path.join(remote.root, 'xo-vm-backups');
    await mkdir(path.join(vms, '.vm-1'), { recursive: true });
    await writeFile(path.join(vms, '.vm-1', 'a.json'), '{}');
    await symlink('.vm-1', path.join(vms, 'vm-1'));
    const now = Date.UTC(2026, 11, 7, 18, 0, 0);
    const held = HeldRemote.open({ root: remote.root, realRoot: remote.root });
    try {
      expect(putBackLinkedFolder(held, 'xo-vm-backups/vm-1', now)).toEqual({
        result: 'put-back',
        target: 'xo-vm-backups/.vm-1',
        aside: 'xo-vm-backups/.vm-1.linked-20261207T180000Z',
      });
    } finally {
      held.close();
    }
    expect((await lstat(path.join(vms, 'vm-1'))).isDirectory()).toBe(true);
    expect(await readdir(path.join(vms, 'vm-1'))).toEqual(['a.json']);
    expect(await readlink(path.join(vms, '.vm-1.linked-20261207T180000Z'))).toBe('.vm-1');
    const again = HeldRemote.open({ root: remote.root, realRoot: remote.root });
    try {
      expect(putBackLinkedFolder(again, 'xo-vm-backups/vm-1', now)).toEqual({ result: 'no-link' });
    } finally {
      again.close();
    }
  });

  it('puts an empty folder, of the owner of the folder holding it, in place of a link to a file', async () => {
    const remote = await tempRemote();
    const vms = path.join(remote.root, 'xo-vm-backups');
    await mkdir(vms, { mode: 0o750 });
    await chown(vms, 4242, 4343);
    await writeFile(path.join(vms, '.f'), '');
    await symlink('.f', path.join(vms, 'vm-1'));
    const held = HeldRemote.open({ root: remote.root, realRoot: remote.root });
    try {
      expect(putBackLinkedFolder(held, 'xo-vm-backups/vm-1', Date.UTC(2026, 11, 7))).toEqual({
        result: 'replaced',
        why: 'it leads to xo-vm-backups/.f, not a folder',
        aside: 'xo-vm-backups/.vm-1.linked-20261207T000000Z',
      });
    } finally {
      held.close();
    }
    const made = await lstat(path.join(vms, 'vm-1'));
    expect([made.isDirectory(), made.uid, made.gid, made.mode & 0o777]).toEqual([true, 4242, 4343, 0o750]);
    expect(await readdir(path.join(vms, 'vm-1'))).toEqual([]);
  });
});

describe('putting a linked folder back, or leaving the link (no empty folder)', () => {
  it('a target the kernel will not move (a locked folder): the link goes back where it was', async () => {
    const remote = await tempRemote();
    const vhd = path.join(remote.root, 'xo-vm-backups', 'vm-1', 'vdis', 'j', 'v', 'data', 'd.vhd');
    const hidden = path.join(remote.root, 'xo-vm-backups', 'vm-1', '.hidden');
    await mkdir(path.join(vhd, 'blocks'), { recursive: true });
    await mkdir(hidden);
    await symlink('../../../../../../.hidden', path.join(vhd, 'blocks', '1'));
    execFileSync('chattr', ['+i', hidden]);
    const held = HeldRemote.open({ root: remote.root, realRoot: remote.root });
    try {
      const found = putBackLinkedFolder(
        held,
        'xo-vm-backups/vm-1/vdis/j/v/data/d.vhd/blocks/1',
        Date.UTC(2026, 11, 7),
        {
          within: 'xo-vm-backups/vm-1',
          aside: { folder: 'xo-vm-backups/vm-1/vdis/j/v/data', name: 'd.vhd-blocks-1' },
          emptyFolder: false,
        },
      );
      expect(found).toEqual({ result: 'left', reason: 'xo-vm-backups/vm-1/.hidden could not be moved (EPERM)' });
    } finally {
      held.close();
      execFileSync('chattr', ['-i', hidden]);
    }
    expect(await readlink(path.join(vhd, 'blocks', '1'))).toBe('../../../../../../.hidden');
    expect(await readdir(path.dirname(vhd))).toEqual(['d.vhd']);
  });

  it('a target it may not move (an absolute link): nothing is renamed', async () => {
    const remote = await tempRemote();
    const vhd = path.join(remote.root, 'xo-vm-backups', 'vm-1', 'vdis', 'j', 'v', 'd.vhd');
    await mkdir(path.join(vhd, 'blocks'), { recursive: true });
    await symlink(remote.base, path.join(vhd, 'blocks', '1'));
    const held = HeldRemote.open({ root: remote.root, realRoot: remote.root });
    try {
      const found = putBackLinkedFolder(held, 'xo-vm-backups/vm-1/vdis/j/v/d.vhd/blocks/1', Date.UTC(2026, 11, 7), {
        aside: { folder: 'xo-vm-backups/vm-1/vdis/j/v', name: 'd.vhd-blocks-1' },
        emptyFolder: false,
      });
      expect(found).toMatchObject({ result: 'left', reason: expect.stringMatching(/absolute/) as unknown });
    } finally {
      held.close();
    }
    expect(await readlink(path.join(vhd, 'blocks', '1'))).toBe(remote.base);
    expect(await readdir(path.dirname(vhd))).toEqual(['d.vhd']);
  });
});
