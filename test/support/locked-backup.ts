import type { RemoteContext } from '../../src/context/remote-context.js';
import { writeVmBackup, xoDatetime, type WrittenBackup } from '../../src/demo/sample-remote.js';
import { IndexStore } from '../../src/index/store.js';
import { startDaemon, type LogLine } from './daemon.js';
import { tempRemote, type TestRemote } from './remote.js';
import { remoteContextOf } from './remote-context.js';

// Written at 2026-10-01T01:00Z.
export const LOCKED_AT = Date.UTC(2026, 9, 1, 1, 0, 0);

// One VM backup (`flat` flat disks) on a new remote, locked by a daemon started an hour after it and stopped, and the
// remote as a lift sees it (7-day window): the set-up of the lift tests that act on one locked backup. `beforeLock`
// acts on the remote between the backup's write and the daemon's start (an attacker's plant).
export async function lockedVmBackup(
  flat = 1,
  beforeLock?: (remote: TestRemote, backup: WrittenBackup) => Promise<void>,
): Promise<{ remote: TestRemote; backup: WrittenBackup; context: RemoteContext; logs: LogLine[] }> {
  const remote = await tempRemote();
  const backup = await writeVmBackup(remote.root, {
    vm: 'vm1',
    datetime: xoDatetime(LOCKED_AT),
    disks: Array.from({ length: flat }, () => ({ type: 'flat' as const })),
  });
  await beforeLock?.(remote, backup);
  const { daemon, logs } = await startDaemon(remote, { clock: { now: () => LOCKED_AT + 3_600_000 } });
  await daemon.stop();
  const index = new IndexStore(remote.indexPath, 'r');
  const context = remoteContextOf(remote.root, index);
  return { remote, backup, context, logs };
}
