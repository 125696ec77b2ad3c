import { execFileSync } from 'node:child_process';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSmallFile } from '../../src/remote/read.js';
import { tempFolder } from '../support/remote.js';

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
