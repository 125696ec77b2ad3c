import { lstatSync } from 'node:fs';
import { mkdir, readdir, rename, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { openRemoteContext } from '../../src/context/open.js';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { verifyRemote, type VerifyReport } from '../../src/verify/verify.js';
import { DAY, startDaemon } from '../support/daemon.js';
import { isImmutable, tempRemote, waitFor } from '../support/remote.js';
import { finishVhdDirectoryBackup, vhdDirectoryPaths } from '../support/xo-writes.js';

// verify is "the daemon's own reconcile, run dry" and reads only: a link where XO writes a folder is a finding
// (refused), never settled by verify (session 18's review: it moved the folder back and the link aside).
describe('verify on a remote with a link in place of a VHD directory', () => {
  it('changes nothing on the remote', async () => {
    const remote = await tempRemote();
    const written = await writeVmBackup(remote.root, {
      vm: 'vm-1',
      datetime: xoDatetime(Date.now() - 3_600_000),
      disks: [{ type: 'vhd-directory' }],
    });
    const vhd = written.units.find((u) => u.endsWith('.vhd') && lstatSync(u).isDirectory())!;
    expect(vhd).toBeDefined();
    const hidden = path.join(path.dirname(vhd), `.${path.basename(vhd)}`);
    await rename(vhd, hidden);
    await symlink(path.basename(hidden), vhd);
    const vdi = path.dirname(path.dirname(vhd));
    const before = { vdi: (await readdir(vdi)).sort(), data: (await readdir(path.dirname(vhd))).sort() };

    const context = await openRemoteContext(
      { id: 'r', root: remote.root, immutabilityDurationMs: 7 * DAY, rebuildIndexOnStart: false },
      remote.indexPath,
    );
    const attributes = new IoctlAdapter();
    let report: VerifyReport;
    try {
      report = await verifyRemote(context, attributes, { now: Date.now(), jsonSettleMs: 0 });
    } finally {
      await attributes.close();
    }
    const after = { vdi: (await readdir(vdi)).sort(), data: (await readdir(path.dirname(vhd))).sort() };
    expect({ after, stillLink: lstatSync(vhd).isSymbolicLink() }).toEqual({ after: before, stillLink: true });
    expect(report.findings).toContainEqual({
      kind: 'refused',
      path: vhd,
      detail: expect.stringMatching(/symbolic link where XO writes a folder/) as unknown,
    });
  });

  // Session 19's second review: a unit whose lock failed on a link the flag helper would not follow is locked all the
  // same, and its entry stays pending; verify said the daemon had stopped between indexing and locking.
  it('says a pending unit that is locked failed inside, not that the daemon stopped', async () => {
    const remote = await tempRemote();
    const { daemon, logs } = await startDaemon(remote);
    const { vm, datetime, vhd } = vhdDirectoryPaths(remote.root);
    await mkdir(path.join(vhd, 'blocks', '0'), { recursive: true });
    await writeFile(path.join(vhd, 'blocks', '0', '0'), 'block');
    await writeFile(path.join(remote.root, 'planted.json'), '["none"]');
    await symlink('../../../../../../../planted.json', path.join(vhd, 'chunk-filters.json'));
    await finishVhdDirectoryBackup(vm, datetime, undefined, ['header', 'bat', 'footer']);
    await waitFor(
      () => isImmutable(path.join(vhd, 'header')) && logs.some((l) => /a file at the remote's root/.test(l.msg)),
      'the lock to fail on the link, the rest locked',
    );
    await daemon.stop();

    const context = await openRemoteContext(
      { id: 'r', root: remote.root, immutabilityDurationMs: 7 * DAY, rebuildIndexOnStart: false },
      remote.indexPath,
    );
    const attributes = new IoctlAdapter();
    try {
      const report = await verifyRemote(context, attributes, { now: Date.now(), jsonSettleMs: 0 });
      expect(report.findings).toContainEqual({
        kind: 'pending',
        path: vhd,
        detail: expect.stringMatching(/^locked, but its lock failed inside it/) as unknown,
      });
    } finally {
      await attributes.close();
    }
  });
});
