import { lstatSync } from 'node:fs';
import { mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startDaemon } from '../support/daemon.js';
import { finishVhdDirectoryBackup, vhdDirectoryPaths } from '../support/xo-writes.js';
import { filesBelow, immutableAmong, isFolder, isImmutable, tempRemote, waitFor } from '../support/remote.js';

// A link in place of the VHD directory itself, `data/<dt>.vhd`, which XO makes with mkdir -p too (vhd-lib
// VhdDirectory.create: handler.mktree) under a predictable name. The attacker (XO's credentials) moves it to a dot name
// while XO writes it and leaves a link: XO writes the rest through the link, its alias and json as ever. The daemon
// puts the folder back (never an empty one: it is a backup's disk), says so, and locks it with its blocks; it refused
// the unit at every look and never locked it (session 18's review).

describe('a link in place of the VHD directory data/<dt>.vhd', () => {
  it('is settled like data/ and blocks/: the directory put back and locked with its blocks', async () => {
    const remote = await tempRemote();
    const { logs } = await startDaemon(remote);
    const { vm, vdi, datetime: dt, vhd } = vhdDirectoryPaths(remote.root);
    await mkdir(path.join(vhd, 'blocks', '0'), { recursive: true });
    await writeFile(path.join(vhd, 'blocks', '0', '0'), Buffer.alloc(512, 7));

    // The attacker, mid-write: a relative link to a dot folder beside it.
    const hidden = path.join(vdi, 'data', `.${dt}`);
    await rename(vhd, hidden);
    await symlink(`.${dt}`, vhd);

    // XO goes on through the link.
    await mkdir(path.join(vhd, 'blocks', '1'), { recursive: true });
    await writeFile(path.join(vhd, 'blocks', '1', '0'), Buffer.alloc(512, 7));
    const { alias, json } = await finishVhdDirectoryBackup(vm, dt, undefined, [
      'chunk-filters.json',
      'header',
      'bat',
      'footer',
    ]);

    await waitFor(() => isImmutable(json) && isImmutable(alias), 'the json and alias to be locked');
    const settled = await waitFor(
      () => isFolder(vhd) && isImmutable(vhd),
      'the VHD directory to be put back and locked',
    )
      .then(() => true)
      .catch(() => false);
    const said = logs.some(
      (l) => l.security === true && l.path === vhd && String(l.msg).includes('moved aside') && l.msg.includes('.data-'),
    );
    const stillLink = lstatSync(vhd, { throwIfNoEntry: false })?.isSymbolicLink() === true;
    // What the attacker does next, inside the window.
    const deleted = stillLink
      ? await rm(hidden, { recursive: true }).then(
          () => true,
          () => false,
        )
      : false;
    expect({ settled, stillLink, deletedInWindow: deleted }).toEqual({
      settled: true,
      stillLink: false,
      deletedInWindow: false,
    });
    // Said once, as settled, the link aside in the VDI folder.
    expect(said).toBe(true);
    const files = await filesBelow(vhd);
    expect(immutableAmong(files)).toEqual(files);
  }, 60_000);
});
