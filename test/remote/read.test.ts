import { execFileSync } from 'node:child_process';
import { cp, mkdir, rename, symlink, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { examine, listFolder, listVdiFolders, readRange, readSmallFile } from '../../src/remote/read.js';
import { resolveRemoteRoot } from '../../src/remote/root.js';
import { tempFolder, tempRemote } from '../support/remote.js';

// What the daemon reads from a remote an attacker can write to: a json or an alias, synchronously.
describe('readSmallFile', () => {
  it('reads a regular file, and gives nothing for a FIFO, a folder, a symlink or a file past the limit, without hanging', async () => {
    const folder = await tempFolder();
    const alias = path.join(folder, 'disk.alias.vhd');
    await writeFile(alias, 'data/20261001T061500Z.vhd');
    execFileSync('mkfifo', [path.join(folder, 'fifo.alias.vhd')]);
    await mkdir(path.join(folder, 'folder.alias.vhd'));
    await symlink('/etc/hostname', path.join(folder, 'link.alias.vhd'));
    await writeFile(path.join(folder, 'large.alias.vhd'), 'x'.repeat(65));

    expect(await readSmallFile(alias)).toBe('data/20261001T061500Z.vhd');
    expect(await readSmallFile(path.join(folder, 'fifo.alias.vhd'))).toBeUndefined();
    expect(await readSmallFile(path.join(folder, 'folder.alias.vhd'))).toBeUndefined();
    expect(await readSmallFile(path.join(folder, 'link.alias.vhd'))).toBeUndefined();
    expect(await readSmallFile(path.join(folder, 'large.alias.vhd'), 64)).toBeUndefined();
    expect(await readSmallFile(path.join(folder, 'large.alias.vhd'), 65)).toBe('x'.repeat(65));
    expect(await readSmallFile(path.join(folder, 'missing.alias.vhd'))).toBeUndefined();
  });
});

// The moment of a rename race, held still: a folder on the path of what the daemon reads (the VM folder, a VDI folder,
// `data/`) is a symbolic link to a twin outside the remote holding files of the same names, with other content.
describe('reads below a remote root', () => {
  async function swappedRemote(): Promise<{ root: string; vm: string; vdi: string; outside: string }> {
    const remote = await tempRemote();
    const config = { id: 'r', root: remote.root, immutabilityDurationMs: 86_400_000 };
    const backup = await writeVmBackup(remote.root, {
      vm: 'vm',
      datetime: xoDatetime(Date.now()),
      disks: [{ type: 'vhd-directory' }],
    });
    await resolveRemoteRoot(config as Parameters<typeof resolveRemoteRoot>[0]);
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
    const { vm, vdi, outside } = await swappedRemote();
    const json = (await listFolder(vm)).find((e) => e.name.endsWith('.json'))!.name;
    const alias = (await listFolder(vdi)).find((e) => e.name.endsWith('.alias.vhd'))!.name;
    const header = path.join(vdi, (await readSmallFile(path.join(vdi, alias)))!, 'header');
    const relativeVdi = path.relative(vm, vdi);
    expect(await readRange(header, 0, 1)).toBeDefined();

    // The VHD directory's data/ folder, then the VDI folder, then the VM folder itself.
    await swapForLink(path.join(vdi, 'data'), path.join(outside, relativeVdi, 'data'));
    await expect(readRange(header, 0, 1)).rejects.toMatchObject({ code: 'REMOTE_LINK_ON_PATH' });
    await expect(examine(path.dirname(header))).rejects.toMatchObject({ code: 'REMOTE_LINK_ON_PATH' });

    await writeFile(path.join(outside, relativeVdi, alias), 'data/outside.vhd');
    await swapForLink(vdi, path.join(outside, relativeVdi));
    await expect(readSmallFile(path.join(vdi, alias))).rejects.toMatchObject({ code: 'REMOTE_LINK_ON_PATH' });

    await writeFile(path.join(outside, json), JSON.stringify({ vhds: { x: 'names/what/outside/wants' } }));
    await swapForLink(vm, outside);
    await expect(readSmallFile(path.join(vm, json))).rejects.toMatchObject({ code: 'REMOTE_LINK_ON_PATH' });
    await expect(listFolder(path.join(vm, 'vdis'))).rejects.toMatchObject({ code: 'REMOTE_LINK_ON_PATH' });
    await expect(listVdiFolders(vm)).resolves.toEqual([]);
    // A folder to list that is itself a link is not entered, like a file that is a link is not read.
    expect(await listFolder(vm)).toEqual([]);
    await expect(examine(path.join(vm, json))).rejects.toMatchObject({ code: 'REMOTE_LINK_ON_PATH' });
  });

  it('reads nothing from a FIFO or a 1 GiB sparse file in place of a json, without hanging', async () => {
    const { vm } = await swappedRemote();
    execFileSync('mkfifo', [path.join(vm, '20261001T061500Z.json')]);
    const sparse = path.join(vm, '20261002T061500Z.json');
    await writeFile(sparse, '{}');
    await truncate(sparse, 1024 ** 3);
    expect(await readSmallFile(path.join(vm, '20261001T061500Z.json'))).toBeUndefined();
    expect(await readSmallFile(sparse)).toBeUndefined();
  });
});
