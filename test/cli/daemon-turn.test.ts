import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { startDaemon } from '../support/daemon.js';
import { allImmutable, tempRemote, waitFor, writeConfigFile } from '../support/remote.js';

const BIN = path.resolve('bin/xo-immutable-backups.js');

describe('lift and rebuild-index beside a running daemon', () => {
  it('refuse to race it, naming what to do; lift --dry-run still works; after a clean stop they run', async () => {
    const remote = await tempRemote();
    const config = await writeConfigFile(remote);
    const backup = await writeVmBackup(remote.root, { datetime: xoDatetime(Date.now()) });
    const { daemon } = await startDaemon(remote);
    await waitFor(() => allImmutable(backup.units), 'the backup to be locked');
    const run = (...args: string[]) =>
      spawnSync(process.execPath, [BIN, ...args, '--config', config], { encoding: 'utf8' });

    for (const command of [['lift'], ['rebuild-index'], ['lift', '--all', '--remote', 'r', '--yes']]) {
      const refused = run(...command);
      expect(refused.status, command.join(' ')).toBe(1);
      expect(refused.stderr).toContain('DAEMON_RUNNING');
      expect(refused.stderr).toContain('systemctl stop xo-immutable-backups');
    }
    expect(allImmutable(backup.units)).toBe(true);
    expect(run('lift', '--dry-run').status).toBe(0);

    await daemon.stop();
    expect(run('lift').status).toBe(0);
  });
});
