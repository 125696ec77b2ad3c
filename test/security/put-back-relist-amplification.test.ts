import { rename, symlink } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeConfigBackup, writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { startDaemon, type LogLine } from '../support/daemon.js';
import { isFolder, tempRemote, waitFor } from '../support/remote.js';

// Each structural folder settled had the whole remote listed again and every leaf looked at: two renames by the
// attacker (a schedule folder to a dot name, a link under its old name) bought a walk of the remote and a look at every
// VM folder, each time (the review of session 17). Relists now come at most once every 5 s a remote (daemon/relist.ts).
const VMS = 100;
const CYCLES = 10;

// Folders reconciled so far, from the rounds' debug lines.
function looksAt(logs: readonly LogLine[]): number {
  return logs.filter((l) => /^reconciled \d+ folder/.test(l.msg)).reduce((sum, l) => sum + (l.folders as number), 0);
}

// No round logged for half a second: the catch-up (or the attack's relists) is done.
async function settled(logs: readonly LogLine[]): Promise<void> {
  let count = -1;
  let since = Date.now();
  await waitFor(
    () => {
      const now = looksAt(logs);
      if (now !== count) [count, since] = [now, Date.now()];
      return count > 0 && Date.now() - since > 500;
    },
    'the rounds to settle',
    30_000,
  );
}

describe('a schedule folder linked and put back again and again', () => {
  it('does not make the daemon look at every VM folder each time', async () => {
    const remote = await tempRemote();
    const dt = xoDatetime(Date.now() - 60_000);
    for (let n = 0; n < VMS; n++) await writeVmBackup(remote.root, { vm: `vm-${n}`, datetime: dt });
    for (let cycle = 0; cycle < CYCLES; cycle++) await writeConfigBackup(remote.root, `sched-${cycle}`, dt);
    const { logs } = await startDaemon(remote, { config: { rescanEveryMs: 3_600_000 } });
    await settled(logs);
    const before = looksAt(logs);
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      // One schedule folder each time.
      const schedule = path.join(remote.root, 'xo-config-backups', `sched-${cycle}`);
      await rename(schedule, path.join(path.dirname(schedule), `.sched-${cycle}`));
      await symlink(`.sched-${cycle}`, schedule);
      await waitFor(() => isFolder(schedule), `the schedule folder to be put back (cycle ${cycle})`);
    }
    await settled(logs);
    const looked = looksAt(logs) - before;
    // A look at every folder per relist (the watches made anew: each leaf adopted again is looked at), at most one
    // relist every 5 s: the cycles, a few seconds in all, buy one or two, never one a cycle (1,112 looks before).
    expect(looked).toBeLessThan(3 * (VMS + CYCLES));
  }, 60_000);
});
