import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeConfigBackup, writeVmBackup, xoDatetime, type WrittenBackup } from '../../src/demo/sample-remote.js';
import { entryName, parseEntry, type IndexEntry } from '../../src/index/entry.js';
import { UnitWindows } from '../../src/index/windows.js';
import { parseBackupDatetime, utcDay } from '../../src/remote/datetime.js';
import { identityOf } from '../../src/remote/identity.js';
import { DAY, spawnProtect, startDaemon, type LogLine } from '../support/daemon.js';
import { mountFilesystem } from '../support/filesystems.js';
import { allImmutable, isImmutable, tempRemote, waitFor, writeConfigFile } from '../support/remote.js';

// The backups the daemon said it locked, in the output it wrote so far.
function reportedLocked(stdout: string): Set<string> {
  const labels = new Set<string>();
  for (const line of stdout.split('\n')) {
    if (!line.includes('"msg":"locked')) continue;
    const { backup } = JSON.parse(line) as LogLine & { backup: string };
    labels.add(backup);
  }
  return labels;
}

// The entry of `unit` in any day bucket, as the disk holds it.
async function storedEntry(index: string, unit: string): Promise<IndexEntry | undefined> {
  for (const day of await readdir(index)) {
    const file = path.join(index, day, entryName(unit));
    if (existsSync(file)) return parseEntry(await readFile(file, 'utf8'));
  }
  return undefined;
}

describe('crash consistency', () => {
  it('after kill -9 in the middle of a burst, a restart leaves every backup locked and every locked unit indexed', async () => {
    const remote = await tempRemote();
    const config = await writeConfigFile(remote);
    const { child, exited, stdout } = spawnProtect(config);
    await waitFor(() => stdout().includes('protecting 1 remote'), 'the daemon to start');

    const dt = xoDatetime(Date.now());
    const burst: Promise<WrittenBackup>[] = [];
    for (let i = 0; i < 40; i++) {
      burst.push(
        writeVmBackup(remote.root, {
          vm: `vm-${i}`,
          datetime: dt,
          disks: [{ type: 'flat' }, { type: 'vhd-directory', blocks: 10 }],
        }),
      );
      burst.push(writeConfigBackup(remote.root, `schedule-${i}`, dt));
    }
    // Killed as soon as the first lock lands, with most of the burst still to do.
    await waitFor(() => stdout().includes('"msg":"locked'), 'the first lock');
    child.kill('SIGKILL');
    await exited;
    const backups = await Promise.all(burst);

    await startDaemon(remote);
    const units = backups.flatMap((b) => b.units);
    expect(allImmutable(units)).toBe(true);
    const indexed = backups.flatMap((b) => (b.label.endsWith('.json') ? b.units : [b.label]));
    for (const unit of indexed) {
      const file = path.join(remote.indexPath, 'r', utcDay(parseBackupDatetime(dt)!), entryName(unit));
      expect(existsSync(file), unit).toBe(true);
      expect((JSON.parse(await readFile(file, 'utf8')) as IndexEntry).state, unit).toBe('locked');
    }
    expect(isImmutable(path.join(remote.root, 'immutability.json'))).toBe(true);
  });

  // A power loss keeps only what reached the disk: the index filesystem is shut down without flushing its journal
  // (FS_IOC_SHUTDOWN, as xfstests' godown does), the daemon killed, the filesystem mounted again.
  it('after a power loss, every backup reported locked has its entries and a window no shorter than recorded', async () => {
    const remote = await tempRemote();
    const indexFs = await mountFilesystem('ext4');
    const indexPath = path.join(indexFs, 'index');
    const config = await writeConfigFile({ ...remote, indexPath });
    const { child, exited, stdout } = spawnProtect(config);
    await waitFor(() => stdout().includes('protecting 1 remote'), 'the daemon to start');

    // Named in the future: each unit's window counts from its arrival, kept in a record by identity.
    const arrival = Date.now();
    const writing: Promise<WrittenBackup>[] = [];
    for (let i = 0; i < 30; i++) {
      writing.push(writeVmBackup(remote.root, { vm: `future-${i}`, datetime: '99991231T235959Z' }));
      writing.push(writeVmBackup(remote.root, { vm: `now-${i}`, datetime: xoDatetime(arrival) }));
    }
    const backups = await Promise.all(writing);
    const future = new Set(backups.filter((b) => b.label.includes('/future-')).map((b) => b.label));
    await waitFor(() => [...reportedLocked(stdout())].some((l) => future.has(l)), 'a future-named backup locked');
    const reported = reportedLocked(stdout());
    execFileSync('xfs_io', ['-x', '-c', 'shutdown', indexFs]);
    child.kill('SIGKILL');
    await exited;
    execFileSync('umount', [indexFs]);
    execFileSync('mount', ['-o', 'loop', path.join(indexFs, '..', 'image'), indexFs]);

    const windows = new UnitWindows(indexPath, 'r');
    let recorded = 0;
    for (const backup of backups.filter((b) => reported.has(b.label)))
      for (const unit of backup.units) {
        expect((await storedEntry(path.join(indexPath, 'r'), unit))?.path, unit).toBe(unit);
        if (!future.has(backup.label)) continue;
        const window = await windows.read(identityOf(await lstat(unit, { bigint: true })));
        expect(window?.until, unit).toBeGreaterThanOrEqual(arrival + 7 * DAY);
        expect(window?.until, unit).toBeLessThan(Number.POSITIVE_INFINITY);
        recorded++;
      }
    expect(recorded).toBeGreaterThan(0);
  });
});
