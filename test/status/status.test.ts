import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { writeConfigBackup, writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { DAY, spawnProtect } from '../support/daemon.js';
import { allImmutable, tempRemote, waitFor, writeConfigFile } from '../support/remote.js';

const BIN = path.resolve('bin/xo-immutable-backups.js');
const schema = JSON.parse(readFileSync('docs/status.schema.json', 'utf8')) as object;
const validate = new Ajv({ allErrors: true, strict: false, validateFormats: false }).compile(schema);

function status(config: string, ...args: string[]): { status: number | null; stdout: string } {
  const result = spawnSync(process.execPath, [BIN, 'status', '--config', config, ...args], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { status: result.status, stdout: result.stdout };
}

describe('xo-immutable-backups status', () => {
  it('reports a real protected remote: JSON valid against its schema, counts matching the index, 80 columns', async () => {
    const remote = await tempRemote();
    const config = await writeConfigFile(remote);
    // Noon, three days ago: its window (7 days and a 1 % slack, 1.7 h) ends on the fourth day from today, whatever the
    // time of day (from now - 3 days, it ended on the fifth after 22:19 UTC).
    const noon = Math.floor((Date.now() - 3 * DAY) / DAY) * DAY + DAY / 2;
    const old = await writeVmBackup(remote.root, {
      vm: 'vm',
      datetime: xoDatetime(noon),
      disks: [{ type: 'flat' }, { type: 'vhd-directory' }],
    });
    const cfg = await writeConfigBackup(remote.root, 's', xoDatetime(Date.now() - DAY));

    // Not running yet: said so, and the exit code asks for attention.
    const before = status(config, '--json');
    expect(before.status).toBe(1);
    expect(JSON.parse(before.stdout)).toMatchObject({ daemon: { running: false }, remotes: [{ protectedUnits: 0 }] });

    const { child, stdout } = spawnProtect(config);
    await waitFor(() => stdout().includes('protecting 1 remote'), 'the daemon to start');
    expect(allImmutable([...old.units, ...cfg.units])).toBe(true);

    const result = status(config, '--json');
    expect(result.status).toBe(0);
    const report = JSON.parse(result.stdout) as {
      daemon: { running: boolean; pid: number };
      remotes: {
        protectedUnits: number;
        protectedBackups: number;
        unlocks: { day: string; units: number }[];
        healthy: boolean;
      }[];
    };
    expect(validate(report), JSON.stringify(validate.errors)).toBe(true);
    expect(report.daemon).toMatchObject({ running: true, pid: child.pid });
    // One entry per unit: the VM's json, flat disk, alias and VHD directory, and the config backup's folder.
    expect(report.remotes[0]).toMatchObject({ protectedUnits: 5, protectedBackups: 2, healthy: true });
    expect(report.remotes[0]?.unlocks).toHaveLength(14);
    expect(report.remotes[0]?.unlocks.reduce((n, u) => n + u.units, 0)).toBe(5);
    expect(report.remotes[0]?.unlocks[4]?.units).toBe(4);

    const human = status(config);
    expect(human.status).toBe(0);
    expect(human.stdout).toContain('daemon:    running');
    expect(human.stdout).toContain('(restore without unlocking: xo-immutable-backups stage-restore)');
    expect(human.stdout).toContain('protected: 5 unit(s) in 2 backup(s)');
    for (const line of human.stdout.split('\n')) expect(line.length, line).toBeLessThanOrEqual(80);
  });

  it('reads the version-1 status.json a daemon of the previous release writes (an upgrade with it still running)', async () => {
    const remote = await tempRemote();
    const config = await writeConfigFile(remote);
    await mkdir(remote.indexPath, { recursive: true });
    const now = new Date().toISOString();
    // Exactly what release 0.1.0's daemon writes: no restorePoints.
    const v1 = {
      version: 1,
      daemonVersion: '0.1.0',
      pid: process.pid,
      startedAt: now,
      heartbeat: now,
      remotes: [
        {
          id: 'r',
          root: remote.root,
          healthy: true,
          protectedByNameOnly: false,
          vmsWithUnknownChain: 0,
          vmsWithFlatVhds: 0,
        },
      ],
      lifting: { frozen: false },
      errors: 0,
      securityWarnings: 0,
      watchedFolders: 3,
    };
    await writeFile(path.join(remote.indexPath, 'status.json'), JSON.stringify(v1, null, 2));
    const result = status(config, '--json');
    expect(result.status).toBe(0);
    const report = JSON.parse(result.stdout) as object;
    expect(validate(report), JSON.stringify(validate.errors)).toBe(true);
    expect(report).toMatchObject({
      version: 2,
      daemon: { running: true, pid: process.pid, version: '0.1.0' },
      remotes: [{ healthy: true, restorePoints: { inWindow: 0, protected: 0, unprotected: 0, vms: [] } }],
    });
    expect(status(config).stdout).toContain('daemon:    running');
  });
});
