import { lstatSync } from 'node:fs';
import { mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startDaemon } from '../support/daemon.js';
import { finishVhdDirectoryBackup, vhdDirectoryPaths } from '../support/xo-writes.js';
import {
  allImmutable,
  filesBelow,
  immutableAmong,
  isFolder,
  isImmutable,
  tempRemote,
  waitFor,
} from '../support/remote.js';

// Hole 3 inside a VHD directory: XO makes blocks/ and blocks/<n> with mkdir -p, which follows a link, and writes its
// blocks behind it. The attacker (XO's credentials) plants the link while XO writes the directory; the daemon locks the
// directory when the backup's json arrives, and settles the link first, so that the blocks are locked with it.

interface Written {
  vhd: string;
  json: string;
  alias: string;
}

// XO's VHD directory, its blocks' folders made by `attack` (a link, or nothing) before XO writes into them.
async function xoBackup(root: string, attack: (vhd: string) => Promise<void>): Promise<Written> {
  const { vm, datetime: dt, vhd } = vhdDirectoryPaths(root);
  await mkdir(vhd, { recursive: true });
  for (const part of ['chunk-filters.json', 'header']) await writeFile(path.join(vhd, part), part);
  await attack(vhd);
  for (const folder of ['0', '1']) {
    // mkdir -p, as XO's outputFile: an existing link to a folder is followed.
    await mkdir(path.join(vhd, 'blocks', folder), { recursive: true });
    for (const block of ['0', '1']) await writeFile(path.join(vhd, 'blocks', folder, block), Buffer.alloc(512, 7));
  }
  return { vhd, ...(await finishVhdDirectoryBackup(vm, dt)) };
}

function isLink(file: string): boolean {
  return lstatSync(file, { throwIfNoEntry: false })?.isSymbolicLink() === true;
}

describe('a link where XO makes the folders of a VHD directory', () => {
  const cases: [string, string, (vhd: string) => Promise<void>][] = [
    [
      'blocks/1, a relative link to a dot folder of the VM folder',
      'blocks/1',
      async (vhd) => {
        const hidden = path.join(vhd, '..', '..', '..', '..', '..', '.hidden');
        await mkdir(hidden, { recursive: true });
        await mkdir(path.join(vhd, 'blocks'));
        await symlink(path.relative(path.join(vhd, 'blocks'), hidden), path.join(vhd, 'blocks', '1'));
      },
    ],
    [
      'blocks itself, a relative link to a dot folder of the VDI folder',
      'blocks',
      async (vhd) => {
        const hidden = path.join(vhd, '..', '..', '.b');
        await mkdir(hidden, { recursive: true });
        await symlink(path.join('..', '..', '.b'), path.join(vhd, 'blocks'));
      },
    ],
  ];

  for (const [what, linked, attack] of cases)
    it(`${what}: the folder is put back and every block is locked`, async () => {
      const remote = await tempRemote();
      await startDaemon(remote);
      const written = await xoBackup(remote.root, attack);
      await waitFor(() => allImmutable([written.json, written.alias, written.vhd]), 'the backup to be locked');
      const link = path.join(written.vhd, linked);
      expect(isFolder(link)).toBe(true);
      const files = await filesBelow(written.vhd);
      expect(files.filter((f) => f.includes(`${path.sep}blocks${path.sep}`))).toHaveLength(6);
      expect(immutableAmong(files)).toEqual(files);
      // The link, aside in the VDI folder (never inside the directory, where the lift would refuse it as foreign, nor
      // in data/, which XO's clean-up sweeps).
      const vdi = path.dirname(path.dirname(written.vhd));
      const aside = (await readdir(vdi)).filter((n) => n.includes('.linked-'));
      expect(aside).toHaveLength(1);
      expect(aside[0]!.startsWith(`.data-${path.basename(written.vhd)}-${linked.replace('/', '-')}.linked-`)).toBe(
        true,
      );
    }, 60_000);

  it('blocks/1, an absolute link: left in place, the directory locked without it, said', async () => {
    const remote = await tempRemote();
    const outside = path.join(remote.base, 'outside');
    await mkdir(outside);
    const daemon = await startDaemon(remote);
    const written = await xoBackup(remote.root, async (vhd) => {
      await mkdir(path.join(vhd, 'blocks'));
      await symlink(outside, path.join(vhd, 'blocks', '1'));
    });
    await waitFor(() => isImmutable(written.json), 'the json to be locked');
    await waitFor(() => isImmutable(written.vhd), 'the VHD directory to be locked, all the same');
    expect(isLink(path.join(written.vhd, 'blocks', '1'))).toBe(true);
    expect(isImmutable(path.join(outside, '0'))).toBe(false);
    await waitFor(
      () => daemon.logs.some((l) => l.msg.includes('left in place') && l.msg.includes('is absolute')),
      'the link left in place to be said',
    );
  }, 60_000);
});
