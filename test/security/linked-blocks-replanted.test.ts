import { lstatSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startDaemon } from '../support/daemon.js';
import { isImmutable, tempRemote, waitFor } from '../support/remote.js';
import { startReplanter } from '../support/replanter.js';
import { finishVhdDirectoryBackup, vhdDirectoryPaths } from '../support/xo-writes.js';

// Session 18's review of adf5951: the link at blocks/<n> is settled in the reconcile, and the directory is locked a
// little later, by the lock batch (its index entries written first). The settle shows itself (the aside link appears in
// the VDI folder), and the attacker (XO's credentials, here a process watching the VDI folder) moves the folder just put
// back away again and plants the link anew before the lock: three runs out of three. The directory was then locked
// around the link, and the blocks behind it stayed deletable inside the window. Now the flag helper, which meets the
// link in a blocks/ it has just locked (so the link can no longer change), locks what it leads to with the unit.
describe('a link at blocks/<n> planted again right after its settle', () => {
  it('what it leads to is locked with the directory, and the disk still reads whole through it', async () => {
    const remote = await tempRemote();
    const { logs } = await startDaemon(remote);
    const { vm, vdi, data, datetime: dt, vhd } = vhdDirectoryPaths(remote.root);
    await mkdir(path.join(vhd, 'blocks'), { recursive: true });
    await mkdir(path.join(data, '.h'));
    await symlink(path.join('..', '..', '.h'), path.join(vhd, 'blocks', '1'));
    for (const folder of ['0', '1']) {
      await mkdir(path.join(vhd, 'blocks', folder), { recursive: true });
      for (const block of ['0', '1']) await writeFile(path.join(vhd, 'blocks', folder, block), Buffer.alloc(512, 7));
    }

    const attacker = await startReplanter(vdi, vhd, '1', '.h2');
    const { json } = await finishVhdDirectoryBackup(vm, dt, undefined, [
      'chunk-filters.json',
      'header',
      'bat',
      'footer',
    ]);
    expect(await attacker.done).toBe('replanted');
    // The lock's answer, said as a security warning naming where the link leads.
    const warned = () => logs.find((l) => l.path === vhd && /data\/\.h2, which it leads to, is locked/.test(l.msg));
    await waitFor(() => isImmutable(json) && warned() !== undefined, 'the backup to be locked, the link said');
    expect(lstatSync(path.join(vhd, 'blocks', '1')).isSymbolicLink()).toBe(true);
    const behind = (await readdir(path.join(data, '.h2'))).map((n) => path.join(data, '.h2', n));
    expect(behind).toHaveLength(2);
    // The attacker's next step, inside the window: nothing behind the link goes.
    for (const f of behind) await rm(f).catch(() => undefined);
    expect(behind.filter((f) => !isImmutable(f))).toEqual([]);
    expect(isImmutable(path.join(data, '.h2'))).toBe(true);
    // XO reads the disk through the link, as it wrote it.
    for (const block of ['0', '1'])
      expect(await readFile(path.join(vhd, 'blocks', '1', block))).toEqual(Buffer.alloc(512, 7));
  }, 60_000);

  // Session 19's review: the link planted again leads nowhere while the helper passes it (the folder kept aside until
  // blocks/0 is locked), then the folder is put where it leads. The helper cannot follow it: the unit fails, what it
  // holds locked, and is tried again, when the link is followed and what it leads to locked. It was answered as
  // locked, and the blocks XO reads through the link stayed deletable.
  it('a link that leads nowhere while the helper passes it: the unit is tried again, then what it leads to locked', async () => {
    const remote = await tempRemote();
    const { logs } = await startDaemon(remote, { retryDelayMs: 200 });
    const { vm, vdi, data, datetime: dt, vhd } = vhdDirectoryPaths(remote.root);
    await mkdir(path.join(data, '.h'), { recursive: true });
    await mkdir(path.join(vhd, 'blocks'), { recursive: true });
    await symlink(path.join('..', '..', '.h'), path.join(vhd, 'blocks', '1'));
    for (const folder of ['0', '1']) {
      await mkdir(path.join(vhd, 'blocks', folder), { recursive: true });
      for (const block of ['0', '1']) await writeFile(path.join(vhd, 'blocks', folder, block), Buffer.alloc(512, 7));
    }

    const attacker = await startReplanter(vdi, vhd, '1', '.h2', { dangling: true });
    await finishVhdDirectoryBackup(vm, dt, undefined, ['chunk-filters.json', 'header', 'bat', 'footer']);
    expect(await attacker.done).toBe('replanted');
    const behind = ['0', '1'].map((n) => path.join(data, '.h2', n));
    await waitFor(() => behind.every(isImmutable), 'what the link leads to, once it leads somewhere, to be locked');
    // Said first as not followed, the unit not recorded as locked.
    expect(
      logs.some((l) => l.path === vhd && /not locked: .*blocks\/1 .*not followed: it leads nowhere/.test(l.msg)),
    ).toBe(true);
    for (const f of behind) await rm(f).catch(() => undefined);
    expect(behind.filter((f) => !isImmutable(f))).toEqual([]);
    for (const block of ['0', '1'])
      expect(await readFile(path.join(vhd, 'blocks', '1', block))).toEqual(Buffer.alloc(512, 7));
  }, 60_000);
});
