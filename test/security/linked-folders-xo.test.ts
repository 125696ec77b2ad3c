import { lstat, rename, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startDaemon } from '../support/daemon.js';
import { immutableAmong, stopBeforeCleanup, tempRemote, waitFor } from '../support/remote.js';
import { missingForXo } from '../xo/requirements.js';

// XO's own writer and restore against the attack of test/security/linked-folders.test.ts: the VM folder renamed to a
// dot name, a relative link left under its old name. XO writes its next backup through the link (or into the folder
// once the daemon has put it back); either way it ends locked, and survives the attacker's deletes.
const missing = missingForXo();
const h = missing === undefined ? await import('../xo/harness.mjs') : undefined;
const HOUR = 3_600_000;

describe.skipIf(h === undefined)('a VM folder made a symbolic link, with XO writing to it', () => {
  for (const watch of [true, false])
    it(`XO's next backup is locked and restores after the attacker (watcher ${watch ? 'on' : 'off'})`, async () => {
      const remote = await tempRemote();
      await startDaemon(remote, { watch, config: { rescanEveryMs: 1_000 } });
      const xo = await h!.openRemote({ root: remote.root, useVhdDirectory: true });
      stopBeforeCleanup(() => xo.close());
      const vm = h!.makeVm({ disks: [4 * h!.MiB] });
      const first = await h!.writeNightly(xo, vm, Date.now() - 2 * HOUR);
      const firstFiles = await h!.backupFiles(xo, first);
      await waitFor(() => immutableAmong(firstFiles).length === firstFiles.length, 'the first backup to be locked');
      const vms = path.join(remote.root, 'xo-vm-backups');
      await rename(path.join(vms, vm.uuid), path.join(vms, `.${vm.uuid}`));
      await symlink(`.${vm.uuid}`, path.join(vms, vm.uuid));

      const second = await h!.writeNightly(xo, vm, Date.now() - 60_000);
      expect((await h!.listVmBackups(xo, vm.uuid)).length).toBe(2);
      const files = await h!.backupFiles(xo, second);
      await waitFor(() => immutableAmong(files).length === files.length, 'the backup XO wrote to be locked');
      expect((await lstat(path.join(vms, vm.uuid))).isDirectory()).toBe(true);
      // The attacker's turn, as XO's user: every file of both backups it can reach.
      for (const f of [...firstFiles, ...files]) await rm(f, { force: true, recursive: true }).catch(() => undefined);
      expect(await h!.restoreMismatches(xo, first)).toEqual([]);
      expect(await h!.restoreMismatches(xo, second)).toEqual([]);
    }, 90_000);
});
