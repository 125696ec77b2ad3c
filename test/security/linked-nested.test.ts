import { lstatSync } from 'node:fs';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startDaemon } from '../support/daemon.js';
import { finishVhdDirectoryBackup, JOB, VDI, vhdDirectoryPaths } from '../support/xo-writes.js';
import { filesBelow, isFolder, isImmutable, tempRemote, waitFor } from '../support/remote.js';

// Links nested at every level where XO makes a folder in a VM folder (vdis/, the job's and VDI's folders, data/,
// data/<dt>.vhd), each to a dot folder beside it, planted once before XO writes; XO's mkdir -p follows them all. A
// look settles the links it sees, then looks again while it settled some, one level a look: the disk is put back and
// locked at once (session 18's review: each further level waited for a json event or rescanEvery, and the complete
// backup's disk stayed deletable meanwhile).

describe('nested links at vdis/, the job and VDI folders, data/ and data/<dt>.vhd', () => {
  it('the disk is put back and locked without waiting for a rescan per level', async () => {
    const remote = await tempRemote();
    // rescanEvery 1 h (testConfig): only events bring a look, as with the 15 min default.
    await startDaemon(remote);
    const { vm, vdi, datetime: dt, vhd } = vhdDirectoryPaths(remote.root);
    await mkdir(vdi, { recursive: true });

    // The attacker, as XO's user, before XO writes the disk: a link at every level where XO makes a folder, each to a
    // dot folder beside it (so each resolves the same once the one above is put back).
    await rm(path.join(vm, 'vdis'), { recursive: true });
    const hidden = path.join(vm, '.v', '.j', '.i', '.d', '.x');
    await mkdir(hidden, { recursive: true });
    await symlink('.v', path.join(vm, 'vdis'));
    await symlink('.j', path.join(vm, '.v', JOB));
    await symlink('.i', path.join(vm, '.v', '.j', VDI));
    await symlink('.d', path.join(vm, '.v', '.j', '.i', 'data'));
    await symlink('.x', path.join(vm, '.v', '.j', '.i', '.d', `${dt}.vhd`));

    // XO: mkdir -p through both links, then its blocks, parts, alias and json.
    await mkdir(path.join(vhd, 'blocks', '0'), { recursive: true });
    await writeFile(path.join(vhd, 'blocks', '0', '0'), Buffer.alloc(512, 7));
    const { alias, json } = await finishVhdDirectoryBackup(vm, dt, undefined, [
      'chunk-filters.json',
      'header',
      'bat',
      'footer',
    ]);

    // The json is locked at once (its disk's units refused: a link on their way).
    await waitFor(() => isImmutable(json), 'the json to be locked', 20_000);
    const locked = await waitFor(() => isFolder(vhd) && isImmutable(vhd) && isImmutable(alias), 'the disk', 20_000)
      .then(() => true)
      .catch(() => false);
    const stillLink = lstatSync(vhd, { throwIfNoEntry: false })?.isSymbolicLink() === true;
    // Inside its window, what the attacker does next: the disk's blocks, behind the links, are not locked.
    const deleted = stillLink
      ? await rm(path.join(vhd, 'blocks'), { recursive: true }).then(
          () => true,
          () => false,
        )
      : false;
    expect({ locked, stillLink, deletedInWindow: deleted }).toEqual({
      locked: true,
      stillLink: false,
      deletedInWindow: false,
    });
    const files = await filesBelow(vhd);
    expect(files.filter((f) => !isImmutable(f))).toEqual([]);
  }, 60_000);
});
