import { execFileSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { cp, mkdir, rename, symlink, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { HeldRemote } from '../../src/remote/held.js';
import { examine, listFolder, listVdiFolders, readSmallFile, relativeIn } from '../../src/remote/read.js';
import type { RemoteRoot } from '../../src/remote/root.js';
import { tempFolder, tempRemote } from '../support/remote.js';

// Each read through a held remote opened for it, as one operation of the daemon: a folder swapped since the last
// one is met as it is now.
function reader(remote: RemoteRoot): <T>(read: (held: HeldRemote) => T) => T {
  return (read) => {
    const held = HeldRemote.open(remote);
    try {
      return read(held);
    } finally {
      held.close();
    }
  };
}

// What the daemon reads from a remote an attacker can write to: a json or an alias, synchronously.
describe('readSmallFile', () => {
  it('reads a regular file, and gives nothing for a FIFO, a folder, a symlink or a file past the limit, without hanging', async () => {
    const root = await tempFolder();
    const at = reader({ root, realRoot: realpathSync(root) });
    const folder = path.join(root, 'vm');
    await mkdir(folder);
    const alias = path.join(folder, 'disk.alias.vhd');
    await writeFile(alias, 'data/20261001T061500Z.vhd');
    execFileSync('mkfifo', [path.join(folder, 'fifo.alias.vhd')]);
    await mkdir(path.join(folder, 'folder.alias.vhd'));
    await symlink('/etc/hostname', path.join(folder, 'link.alias.vhd'));
    await writeFile(path.join(folder, 'large.alias.vhd'), 'x'.repeat(64 * 1024 + 1));
    await writeFile(path.join(folder, 'limit.alias.vhd'), 'x'.repeat(64 * 1024));

    expect(at((h) => readSmallFile(h, relativeIn(h, alias)))).toBe('data/20261001T061500Z.vhd');
    expect(at((h) => readSmallFile(h, relativeIn(h, path.join(folder, 'fifo.alias.vhd'))))).toBeUndefined();
    expect(at((h) => readSmallFile(h, relativeIn(h, path.join(folder, 'folder.alias.vhd'))))).toBeUndefined();
    expect(at((h) => readSmallFile(h, relativeIn(h, path.join(folder, 'link.alias.vhd'))))).toBeUndefined();
    expect(at((h) => readSmallFile(h, relativeIn(h, path.join(folder, 'large.alias.vhd'))))).toBeUndefined();
    expect(at((h) => readSmallFile(h, relativeIn(h, path.join(folder, 'limit.alias.vhd'))))).toBe(
      'x'.repeat(64 * 1024),
    );
    expect(at((h) => readSmallFile(h, relativeIn(h, path.join(folder, 'missing.alias.vhd'))))).toBeUndefined();
  });
});

// Nothing is opened by a path outside the remote it is read from.
describe('reads by path', () => {
  it('refuses a path outside the remote instead of opening it', async () => {
    const root = await tempFolder();
    const elsewhere = await tempFolder();
    await writeFile(path.join(elsewhere, 'x.json'), '{}');
    const remote = { root, realRoot: realpathSync(root) };
    expect(() => relativeIn(remote, path.join(elsewhere, 'x.json'))).toThrow(
      expect.objectContaining({ code: 'REMOTE_PATH_OUTSIDE' }),
    );
    expect(() => relativeIn(remote, `${root}/../${path.basename(elsewhere)}`)).toThrow(
      expect.objectContaining({ code: 'REMOTE_PATH_OUTSIDE' }),
    );
  });
});

// The moment of a rename race, held still: a folder on the path of what the daemon reads (the VM folder, a VDI folder,
// `data/`) is a symbolic link to a twin outside the remote holding files of the same names, with other content.
describe('reads below a remote root', () => {
  async function swappedRemote(): Promise<{ root: string; vm: string; vdi: string; outside: string }> {
    const remote = await tempRemote();
    const backup = await writeVmBackup(remote.root, {
      vm: 'vm',
      datetime: xoDatetime(Date.now()),
      disks: [{ type: 'vhd-directory' }],
    });
    const vm = path.join(remote.root, 'xo-vm-backups', 'vm');
    const alias = backup.units.find((u) => u.endsWith('.alias.vhd'))!;
    const outside = path.join(remote.base, 'outside');
    await cp(vm, outside, { recursive: true });
    return { root: remote.root, vm, vdi: path.dirname(alias), outside };
  }

  async function swapForLink(folder: string, twin: string): Promise<void> {
    await rename(folder, `${folder}.away`);
    await symlink(twin, folder);
  }

  it('never reads a json, an alias, a VHD header or a listing through a folder swapped for a symbolic link', async () => {
    const { root, vm, vdi, outside } = await swappedRemote();
    const at = reader({ root, realRoot: realpathSync(root) });
    // A read; a REMOTE_LINK_ON_PATH it throws, as its code.
    const codeOf = <T>(read: (held: HeldRemote) => T): T | string | undefined => {
      try {
        return at(read);
      } catch (error) {
        return (error as { code?: string }).code;
      }
    };
    const json = at((h) => listFolder(h, relativeIn(h, vm))).find((e) => e.name.endsWith('.json'))!.name;
    const alias = at((h) => listFolder(h, relativeIn(h, vdi))).find((e) => e.name.endsWith('.alias.vhd'))!.name;
    const header = path.join(
      vdi,
      at((h) => readSmallFile(h, relativeIn(h, path.join(vdi, alias))))!,
      'header',
    );
    const relativeVdi = path.relative(vm, vdi);
    expect(at((h) => h.readRanges(relativeIn(h, header), (read) => read(0, 1)))).toBeDefined();

    // The VHD directory's data/ folder, then the VDI folder, then the VM folder itself.
    await swapForLink(path.join(vdi, 'data'), path.join(outside, relativeVdi, 'data'));
    expect(codeOf((h) => readSmallFile(h, relativeIn(h, header)))).toBe('REMOTE_LINK_ON_PATH');
    expect(codeOf((h) => examine(h, relativeIn(h, path.dirname(header))))).toBe('REMOTE_LINK_ON_PATH');

    await writeFile(path.join(outside, relativeVdi, alias), 'data/outside.vhd');
    await swapForLink(vdi, path.join(outside, relativeVdi));
    expect(codeOf((h) => readSmallFile(h, relativeIn(h, path.join(vdi, alias))))).toBe('REMOTE_LINK_ON_PATH');

    await writeFile(path.join(outside, json), JSON.stringify({ vhds: { x: 'names/what/outside/wants' } }));
    await swapForLink(vm, outside);
    expect(codeOf((h) => readSmallFile(h, relativeIn(h, path.join(vm, json))))).toBe('REMOTE_LINK_ON_PATH');
    expect(codeOf((h) => listFolder(h, relativeIn(h, path.join(vm, 'vdis'))))).toBe('REMOTE_LINK_ON_PATH');
    expect(at((h) => listVdiFolders(h, relativeIn(h, vm)))).toEqual([]);
    // A folder to list that is itself a link is not entered, like a file that is a link is not read.
    expect(at((h) => listFolder(h, relativeIn(h, vm)))).toEqual([]);
    expect(codeOf((h) => examine(h, relativeIn(h, path.join(vm, json))))).toBe('REMOTE_LINK_ON_PATH');
  });

  it('reads nothing from a FIFO or a 1 GiB sparse file in place of a json, without hanging', async () => {
    const { root, vm } = await swappedRemote();
    const at = reader({ root, realRoot: realpathSync(root) });
    execFileSync('mkfifo', [path.join(vm, '20261001T061500Z.json')]);
    const sparse = path.join(vm, '20261002T061500Z.json');
    await writeFile(sparse, '{}');
    await truncate(sparse, 1024 ** 3);
    expect(at((h) => readSmallFile(h, relativeIn(h, path.join(vm, '20261001T061500Z.json'))))).toBeUndefined();
    expect(at((h) => readSmallFile(h, relativeIn(h, sparse)))).toBeUndefined();
  });
});
