import { lstatSync } from 'node:fs';
import { readdir, rename, symlink } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startDaemon } from '../support/daemon.js';
import { immutableAmong, stopBeforeCleanup, tempRemote, waitFor } from '../support/remote.js';
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
});
