import { lstatSync } from 'node:fs';
import { readdir, rename, symlink } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startDaemon } from '../support/daemon.js';
import { immutableAmong, isImmutable, stopBeforeCleanup, tempRemote, waitFor } from '../support/remote.js';
import { startReplanter, type Replanter } from '../support/replanter.js';
import { missingForXo } from '../xo/requirements.js';

// A link at blocks/<n> of a VHD directory XO writes, settled before the directory is locked: the link goes aside into
// the VDI folder, not into data/, the one folder XO's cleanVm sweeps (backup-archive RemoteDiskLineage
// #cleanOrphanDataFiles unlinks every entry of data/ no disk claims, dot names included, "orphaned data file"): the
// link the security warning points the admin to is still there after XO's next run (session 18's review).
const missing = missingForXo();
const h = missing === undefined ? await import('../xo/harness.mjs') : undefined;
const HOUR = 3_600_000;

describe.skipIf(h === undefined)("XO's writer, a blocks/<n> link settled, then XO's next cleanVm", () => {
  it('every block is locked, the link aside stays for the admin, and XO warns of no orphaned data file', async () => {
    const remote = await tempRemote();
    await startDaemon(remote, { config: { rescanEveryMs: 1_000 } });
    const xo = await h!.openRemote({ root: remote.root, useVhdDirectory: true });
    stopBeforeCleanup(() => xo.close());
    const vm = h!.makeVm({ disks: [4 * h!.MiB] });
    // The attacker, while XO writes: blocks/0 moved to a dot folder of data/, a relative link left in its place.
    const backup = await h!.writeNightly(xo, vm, Date.now() - HOUR, {
      beforeAlias: async (dataPath) => {
        const vhd = path.join(remote.root, dataPath);
        await rename(path.join(vhd, 'blocks', '0'), path.join(vhd, '..', '.h'));
        await symlink(path.join('..', '..', '.h'), path.join(vhd, 'blocks', '0'));
      },
    });
    const files = await h!.backupFiles(xo, backup);
    await waitFor(() => immutableAmong(files).length === files.length, 'the backup to be locked');
    const vdi = path.join(remote.root, path.dirname(backup.disks[0]!.path));
    const aside = (await readdir(vdi)).filter((n) => n.includes('.linked-')).map((n) => path.join(vdi, n));
    expect(aside).toHaveLength(1);
    expect(await readdir(path.join(vdi, 'data'))).not.toContainEqual(expect.stringContaining('.linked-'));
    expect(await h!.restoreMismatches(xo, backup)).toEqual([]);

    // XO's next run starts with cleanVm (merge and remove).
    const outcome = await h!.runRetention(xo, vm.uuid, []);
    expect(outcome.cleanError).toBeNull();
    expect({
      asideKept: lstatSync(aside[0]!, { throwIfNoEntry: false }) !== undefined,
      orphanWarnings: outcome.warnings.filter((w) => w.message === 'orphaned data file').length,
    }).toEqual({ asideKept: true, orphanWarnings: 0 });
  }, 90_000);

  // The same link planted again by an attacker's process right after the settle, before the lock (the flag helper then
  // locks what it leads to with the directory): XO restores the disk through the link, and its next cleanVm, which
  // removes what no disk claims in data/, cannot take the blocks either.
  it('a link planted again before the lock: the blocks behind it locked, restored by XO, kept by its cleanVm', async () => {
    const remote = await tempRemote();
    const { logs } = await startDaemon(remote, { config: { rescanEveryMs: 1_000 } });
    const xo = await h!.openRemote({ root: remote.root, useVhdDirectory: true });
    stopBeforeCleanup(() => xo.close());
    const vm = h!.makeVm({ disks: [4 * h!.MiB] });
    let attacker: Replanter | undefined;
    let hidden = '';
    const backup = await h!.writeNightly(xo, vm, Date.now() - HOUR, {
      beforeAlias: async (dataPath) => {
        const vhd = path.join(remote.root, dataPath);
        await rename(path.join(vhd, 'blocks', '0'), path.join(vhd, '..', '.h'));
        await symlink(path.join('..', '..', '.h'), path.join(vhd, 'blocks', '0'));
        hidden = path.join(vhd, '..', '.h2');
        attacker = await startReplanter(path.dirname(path.dirname(vhd)), vhd, '0', '.h2');
      },
    });
    expect(await attacker!.done).toBe('replanted');
    const json = path.join(remote.root, backup.metadataPath);
    await waitFor(
      () => isImmutable(json) && logs.some((l) => /\.h2, which it leads to, is locked with the unit/.test(l.msg)),
      'the backup to be locked, the link said',
    );
    const behind = (await readdir(hidden)).map((n) => path.join(hidden, n));
    expect(behind.length).toBeGreaterThan(0);
    expect(immutableAmong([hidden, ...behind])).toHaveLength(behind.length + 1);
    expect(await h!.restoreMismatches(xo, backup)).toEqual([]);

    const outcome = await h!.runRetention(xo, vm.uuid, []);
    expect(outcome.cleanError).toBeNull();
    expect(immutableAmong([hidden, ...behind])).toHaveLength(behind.length + 1);
    expect(await h!.restoreMismatches(xo, backup)).toEqual([]);
  }, 90_000);
});
