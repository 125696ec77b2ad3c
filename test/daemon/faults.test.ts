import { execFileSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { utcDay } from '../../src/remote/datetime.js';
import { startDaemon } from '../support/daemon.js';
import { allImmutable, tempRemote, waitFor } from '../support/remote.js';

describe('per-file faults', () => {
  it('still locks a backup whose index entries cannot be written, logs it, and keeps running', async () => {
    const remote = await tempRemote();
    const { logs } = await startDaemon(remote);
    // The day folder of today's entries cannot take new files (as on a full or read-only index disk).
    const day = path.join(remote.indexPath, 'r', utcDay(Date.now()));
    await mkdir(day, { recursive: true });
    execFileSync('chattr', ['+i', day]);
    try {
      const backup = await writeVmBackup(remote.root, { datetime: xoDatetime(Date.now()) });
      await waitFor(() => allImmutable(backup.units), 'the backup to be locked anyway');
      // Each unit is named (again at every reconcile that finds it without an entry).
      const named = new Set(
        logs
          .filter((l) => l.level === 'error' && l.msg.startsWith('index entry could not be written'))
          .map((l) => l.path),
      );
      expect([...named].sort()).toEqual([...backup.units].sort());
    } finally {
      execFileSync('chattr', ['-i', day]);
    }
    // Still running: the next backup is locked and indexed.
    const next = await writeVmBackup(remote.root, { datetime: xoDatetime(Date.now()) });
    await waitFor(() => allImmutable(next.units), 'the next backup to be locked');
  });

  it('locks a backup whose events were all lost, at the next periodic rescan', async () => {
    const remote = await tempRemote();
    await startDaemon(remote, { watch: false, config: { rescanEveryMs: 300 } });
    const backup = await writeVmBackup(remote.root, { datetime: xoDatetime(Date.now()) });
    await waitFor(() => allImmutable(backup.units), 'the rescan to lock the backup');
  });
});
