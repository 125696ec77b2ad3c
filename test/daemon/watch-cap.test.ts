import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { asAttacker, handRemoteToAttacker } from '../support/attacker.js';
import { startDaemon, type LogLine } from '../support/daemon.js';
import { allImmutable, tempRemote, waitFor } from '../support/remote.js';

const HOUR = 3_600_000;

const capErrors = (logs: readonly LogLine[]): number =>
  logs.filter((l) => l.cap === 'maxWatchedFolders' && l.level === 'error').length;
const reconciles = (logs: readonly LogLine[]): number =>
  logs.filter((l) => typeof l.msg === 'string' && /^reconciled \d+ folder/.test(l.msg)).length;

// Hole 5 of issue 21 (attacker steps as an unprivileged user owning the remote): at maxWatchedFolders, a real VM folder renamed to a dot name loses its watch; junk takes the
// freed slot; the real folder renamed back must get its watch back, so its next backup is locked at once, not at the
// rescan.
describe('the watch cap', () => {
  it('gives a real VM folder its watch back when it regains its name, even after junk took its slot', async () => {
    const remote = await tempRemote();
    const tree = path.join(remote.root, 'xo-vm-backups');
    const real = [
      await writeVmBackup(remote.root, { vm: 'vm-a', datetime: xoDatetime(Date.now() - 2 * HOUR) }),
      await writeVmBackup(remote.root, { vm: 'vm-b', datetime: xoDatetime(Date.now() - 2 * HOUR) }),
    ];
    const remotes = [
      { id: 'r', root: remote.root, immutabilityDurationMs: 7 * 86_400_000, rebuildIndexOnStart: false },
    ];
    // The VM tree and the two VM folders: the cap. The rescan is a day away: only a watch locks a new backup in time.
    await handRemoteToAttacker(remote);
    const { logs } = await startDaemon(remote, {
      config: { remotes: [{ ...remotes[0]!, maxWatchedFolders: 3 }], rescanEveryMs: 24 * HOUR },
    });
    await waitFor(() => allImmutable(real.flatMap((b) => b.units)), 'the VMs to be locked');
    await waitFor(() => capErrors(logs) === 1, 'the watch cap to be reached');
    await waitFor(() => logs.some((l) => l.msg.startsWith('full proof (after start-up) done')), 'the start-up proof');

    // The attack: the real folder goes to a dot name (its watch is dropped), junk takes the slot, the folder returns.
    asAttacker('mv', ['--', path.join(tree, 'vm-a'), path.join(tree, '.vm-a')]);
    await waitFor(() => logs.some((l) => l.cap === 'maxWatchedFolders' && l.level === 'info'), 'a slot to be freed');
    asAttacker('mkdir', ['--', path.join(tree, 'junk')]);
    await waitFor(() => capErrors(logs) === 2, 'junk to take the slot');
    const before = reconciles(logs);
    asAttacker('mv', ['--', path.join(tree, '.vm-a'), path.join(tree, 'vm-a')]);
    await waitFor(() => reconciles(logs) > before, 'the returned folder to be looked at');

    const next = await writeVmBackup(remote.root, { vm: 'vm-a', datetime: xoDatetime(Date.now()) });
    await waitFor(() => allImmutable(next.units), "the returned folder's next backup to be locked", 20_000);
    expect(logs.find((l) => l.security === true && l.cap === 'maxWatchedFolders')?.unwatched).toBe(
      path.join(tree, 'junk'),
    );
  }, 40_000);
});
