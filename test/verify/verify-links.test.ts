import { lstatSync } from 'node:fs';
import { readdir, rename, symlink } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { openRemoteContext } from '../../src/context/open.js';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { verifyRemote, type VerifyReport } from '../../src/verify/verify.js';
import { DAY } from '../support/daemon.js';
import { tempRemote } from '../support/remote.js';

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
});
