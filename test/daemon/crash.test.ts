import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeConfigBackup, writeVmBackup, xoDatetime, type WrittenBackup } from '../../src/demo/sample-remote.js';
import { entryName, type IndexEntry } from '../../src/index/entry.js';
import { parseBackupDatetime, utcDay } from '../../src/remote/datetime.js';
import { spawnProtect, startDaemon } from '../support/daemon.js';
import { allImmutable, isImmutable, tempRemote, waitFor, writeConfigFile } from '../support/remote.js';

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
});
