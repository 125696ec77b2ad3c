import { lstat, rename, symlink } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeConfigBackup, writePoolBackup, writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { startDaemon } from '../support/daemon.js';
import { allImmutable, immutableAmong, tempRemote, waitFor } from '../support/remote.js';

// Session 16's hole 3 at every place XO writes a folder, linked twice in a row. The first link is settled (the folder
// put back); then the daemon makes the remote's watches anew and lists what is under it again (daemon/relist.ts):
// chokidar itself reports neither the folder back nor the same name made a link again, so without that the second
// link was seen only at the next scan (rescanEvery, 15 minutes by default), and what XO wrote behind it meanwhile was
// not locked (the review of session 17). Relists are at most one every 5 s a remote, 200 ms here (the bound itself:
// put-back-relist-amplification.test.ts).
type Write = (root: string, datetime: string) => Promise<{ units: string[] }>;
const config: Write = (root, dt) => writeConfigBackup(root, 'sched-1', dt);
const pool: Write = (root, dt) => writePoolBackup(root, 's', 'pool-1', dt);
const vm: Write = (root, dt) => writeVmBackup(root, { vm: 'vm-1', datetime: dt });
const PLACES: [string, string, Write][] = [
  ['a VM folder', 'xo-vm-backups/vm-1', vm],
  ['xo-vm-backups', 'xo-vm-backups', vm],
  ['a config schedule folder', 'xo-config-backups/sched-1', config],
  ['xo-config-backups', 'xo-config-backups', config],
  ['a pool schedule folder', 'xo-pool-metadata-backups/s', pool],
  ['a pool folder', 'xo-pool-metadata-backups/s/pool-1', pool],
  ['xo-pool-metadata-backups', 'xo-pool-metadata-backups', pool],
];

async function linkIt(link: string, suffix: string): Promise<void> {
  const hidden = path.join(path.dirname(link), `.${path.basename(link)}${suffix}`);
  await rename(link, hidden);
  await symlink(path.basename(hidden), link);
}

async function lockedAfterLink(root: string, link: string, write: Write, ago: number, suffix: string): Promise<void> {
  await linkIt(link, suffix);
  const backup = await write(root, xoDatetime(Date.now() - ago));
  await waitFor(
    () => allImmutable(backup.units),
    () => `the backup behind the link to be locked: ${immutableAmong(backup.units).length}/${backup.units.length}`,
    30_000,
  );
  expect((await lstat(link)).isDirectory()).toBe(true);
}

describe('a folder where XO writes, made a link twice in a row', () => {
  for (const [what, place, write] of PLACES)
    it(`${what}: settled each time, what XO writes behind each link is locked long before the next scan`, async () => {
      const remote = await tempRemote();
      await startDaemon(remote, { config: { rescanEveryMs: 600_000 }, relistEveryMs: 200 });
      const first = await write(remote.root, xoDatetime(Date.now() - 300_000));
      await waitFor(() => allImmutable(first.units), 'the first backup to be locked');
      const link = path.join(remote.root, place);
      await lockedAfterLink(remote.root, link, write, 200_000, '');
      await lockedAfterLink(remote.root, link, write, 100_000, '-again');
    }, 90_000);

  it('a config schedule folder, with the watcher off: settled at the next scan', async () => {
    const remote = await tempRemote();
    await startDaemon(remote, { watch: false, config: { rescanEveryMs: 1_000 } });
    const first = await config(remote.root, xoDatetime(Date.now() - 300_000));
    await waitFor(() => allImmutable(first.units), 'the first backup to be locked');
    await lockedAfterLink(remote.root, path.join(remote.root, 'xo-config-backups/sched-1'), config, 100_000, '');
  }, 60_000);
});
