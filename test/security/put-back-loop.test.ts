import { lstat, rename, symlink } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeConfigBackup, writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { startDaemon, type LogLine } from '../support/daemon.js';
import { allImmutable, tempRemote, waitFor } from '../support/remote.js';

// A link whose target passes every check of remote/put-back.ts but cannot be renamed (a folder the daemon itself
// locked, moved out of XO's layout with its mutable parent): the link was moved aside, the rename failed (EPERM), the
// link was renamed back, and those renames, events in the watched folder, started another look: a loop, each turn a
// security warning. Now an empty folder takes the link's place: said once, and what XO writes next is locked.
function saidOf(logs: readonly LogLine[], link: string): string[] {
  return logs.filter((l) => l.security === true && l.path === link).map((l) => l.msg);
}

describe('a link to a locked folder outside XO layout', () => {
  it('is replaced by an empty folder, once (no loop, no log flood)', async () => {
    const remote = await tempRemote();
    const { logs } = await startDaemon(remote, { config: { rescanEveryMs: 60_000 } });
    const dt = xoDatetime(Date.now() - 60_000);
    const config = await writeConfigBackup(remote.root, 'sched-1', dt);
    await writeVmBackup(remote.root, { vm: 'vm-2', datetime: dt });
    await waitFor(() => allImmutable(config.units), 'the config backup to be locked');
    // The attacker, as XO: the (mutable) schedule folder moved to a dot name: its locked date folder is no longer in
    // XO's layout by path.
    const cfg = path.join(remote.root, 'xo-config-backups');
    await rename(path.join(cfg, 'sched-1'), path.join(cfg, '.sched-1'));
    const link = path.join(remote.root, 'xo-vm-backups', 'vm-1');
    await symlink(path.join('..', 'xo-config-backups', '.sched-1', dt), link);

    await waitFor(() => saidOf(logs, link).length > 0, 'the link to be said');
    const first = saidOf(logs, link).length;
    // A bounded wait to show what should NOT happen: with rescans a minute apart, at most a look or two more.
    const started = Date.now();
    const other = await writeVmBackup(remote.root, { vm: 'vm-3', datetime: xoDatetime(Date.now() - 30_000) });
    await waitFor(() => allImmutable(other.units), 'another VM backup to be locked during the loop');
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 3_000 - (Date.now() - started))));
    const said = saidOf(logs, link);
    expect(said[0]).toMatch(/not moved \(.*EPERM\)\), an empty folder was made in its place/);
    expect(said.length - first).toBeLessThan(2);
    expect((await lstat(link)).isDirectory()).toBe(true);
    const next = await writeVmBackup(remote.root, { vm: 'vm-1', datetime: xoDatetime(Date.now() - 10_000) });
    await waitFor(() => allImmutable(next.units), 'the next backup of vm-1 to be locked');
  }, 30_000);
});
