import { lstatSync } from 'node:fs';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startDaemon } from '../support/daemon.js';
import { finishVhdDirectoryBackup, vhdDirectoryPaths } from '../support/xo-writes.js';
import { filesBelow, immutableAmong, isImmutable, tempRemote, waitFor } from '../support/remote.js';

// Two levels of links in a VHD directory XO writes: blocks -> a dot folder `.b` whose entry `1` is itself a link to
// another dot folder `.c1`. XO's mkdir -p follows both; its blocks of blocks/1 land in `.c1`. Putting `.b` back as
// blocks/ is not enough: what was put back is listed again, and blocks/1 settled in its turn, so that every block is
// locked (session 18's review: the directory was locked with blocks/1 still a link, its blocks deletable). The link
// texts resolve the same from both depths, so XO notices nothing.

function isLink(file: string): boolean {
  return lstatSync(file, { throwIfNoEntry: false })?.isSymbolicLink() === true;
}

describe('a link at blocks/ leading to a folder whose blocks/<n> are links (two levels)', () => {
  it('every block XO wrote is locked once the directory is (no link left in blocks/)', async () => {
    const remote = await tempRemote();
    await startDaemon(remote);
    const { vm, data, datetime: dt, vhd } = vhdDirectoryPaths(remote.root);
    await mkdir(vhd, { recursive: true });
    for (const part of ['chunk-filters.json', 'header']) await writeFile(path.join(vhd, part), part);

    // The attacker, as XO's user, while XO writes the directory.
    await mkdir(path.join(data, '.z', '.b'), { recursive: true });
    await mkdir(path.join(data, '.c1'));
    await symlink(path.join('..', '.z', '.b'), path.join(vhd, 'blocks'));
    // From data/.z/.b and from data/<dt>.vhd/blocks alike: data/.c1.
    await symlink(path.join('..', '..', '.c1'), path.join(data, '.z', '.b', '1'));

    // XO: mkdir -p blocks/<n> (follows both links), its blocks with wx, then bat, footer, alias, json.
    for (const folder of ['0', '1']) {
      await mkdir(path.join(vhd, 'blocks', folder), { recursive: true });
      for (const block of ['0', '1']) await writeFile(path.join(vhd, 'blocks', folder, block), Buffer.alloc(512, 7));
    }
    const { json } = await finishVhdDirectoryBackup(vm, dt);

    await waitFor(() => isImmutable(json) && isImmutable(vhd), 'the backup to be locked');
    // The first level was settled: blocks/ is the folder `.b` again.
    expect(isLink(path.join(vhd, 'blocks'))).toBe(false);
    // The second level: blocks/1 must be a real folder, and the blocks XO wrote through it locked.
    const behind = path.join(vhd, 'blocks', '1');
    const linkLeft = isLink(behind);
    const blocksOf1 = [path.join(data, '.c1', '0'), path.join(data, '.c1', '1')];
    const unlockedBehind = linkLeft ? blocksOf1.filter((f) => !isImmutable(f)) : [];
    // What the attacker does next, inside the window: delete them.
    if (linkLeft) for (const f of unlockedBehind) await rm(f);
    expect({ linkLeft, unlockedBehind: unlockedBehind.map((f) => path.basename(f)) }).toEqual({
      linkLeft: false,
      unlockedBehind: [],
    });
    const files = await filesBelow(vhd);
    expect(files.filter((f) => f.includes(`${path.sep}blocks${path.sep}`))).toHaveLength(6);
    expect(immutableAmong(files)).toEqual(files);
  }, 60_000);
});
