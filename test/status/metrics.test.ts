import { readFile, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeConfigBackup, writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { renderMetrics } from '../../src/status/metrics.js';
import { VERSION } from '../../src/version.js';
import { DAY, startDaemon } from '../support/daemon.js';
import { tempRemote, waitFor } from '../support/remote.js';
import { writeVhdChain } from '../support/vhd-chain.js';

// The text exposition format, as node_exporter's textfile collector reads it: comments, then `name{labels} value`.
function parse(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-z_:][a-z0-9_:]*(?:\{[^}]*\})?) (-?[0-9.e+]+)$/i.exec(line);
    if (match === null) throw new Error(`not a sample line: ${line}`);
    samples.set(match[1]!, Number(match[2]));
  }
  return samples;
}

describe('metrics file', () => {
  it('is written by the daemon, parses, and its values match what it protected', async () => {
    const remote = await tempRemote();
    const metricsFile = path.join(remote.base, 'xo-immutable-backups.prom');
    await writeVmBackup(remote.root, {
      datetime: xoDatetime(Date.now() - 3600_000),
      disks: [{ type: 'flat' }, { type: 'vhd-directory' }],
    });
    await writeConfigBackup(remote.root, 's', xoDatetime(Date.now() - 3600_000));
    const started = Date.now();
    await startDaemon(remote, { config: { metricsFile } });
    const samples = parse(await readFile(metricsFile, 'utf8'));
    expect(samples.get(`xo_immutable_backups_build_info{version="${VERSION}"}`)).toBe(1);
    expect(samples.get('xo_immutable_backups_protected_units{remote="r"}')).toBe(5);
    expect(samples.get('xo_immutable_backups_remote_healthy{remote="r"}')).toBe(1);
    expect(samples.get('xo_immutable_backups_lock_failures_total')).toBe(0);
    expect(samples.get('xo_immutable_backups_lifting_frozen')).toBe(0);
    expect(samples.get('xo_immutable_backups_coverage_gaps')).toBe(0);
    const lastLock = samples.get('xo_immutable_backups_last_lock_success_timestamp_seconds')!;
    expect(lastLock).toBeGreaterThanOrEqual(Math.floor(started / 1000));
    expect(lastLock).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
    await waitFor(
      async () =>
        parse(await readFile(metricsFile, 'utf8')).has(
          'xo_immutable_backups_last_lift_success_timestamp_seconds{remote="r"}',
        ),
      'the lift timestamp',
    );
  });

  it('counts a refused disk as a coverage gap', async () => {
    const remote = await tempRemote();
    const metricsFile = path.join(remote.base, 'xo-immutable-backups.prom');
    const backup = await writeVmBackup(remote.root, { datetime: xoDatetime(Date.now() - 3600_000) });
    // A disk that is a symbolic link: never followed, never locked.
    const disk = backup.units.find((u) => u.endsWith('.vhd'))!;
    await rm(disk);
    await symlink(path.join(remote.base, 'elsewhere'), disk);
    await startDaemon(remote, { config: { metricsFile } });
    expect(parse(await readFile(metricsFile, 'utf8')).get('xo_immutable_backups_coverage_gaps')).toBe(1);
  });

  it('escapes label values and leaves out what is not known yet', () => {
    const text = renderMetrics({
      version: '1"2',
      heartbeatMs: 5000,
      liftingFrozen: true,
      lockFailuresTotal: 1,
      indexFailuresTotal: 0,
      securityWarningsTotal: 2,
      pendingRechecks: 0,
      foldersBackingOff: 0,
      coverageGaps: 3,
      lastSuccessfulLockMs: undefined,
      lastReconcileMs: undefined,
      remotes: [
        {
          id: 'a',
          healthy: false,
          protectedUnits: undefined,
          pendingUnits: 0,
          liftFailuresTotal: 0,
          heldVms: 0,
          lastSuccessfulLiftMs: undefined,
        },
      ],
    });
    const samples = parse(text);
    expect(samples.get('xo_immutable_backups_build_info{version="1\\"2"}')).toBe(1);
    expect(samples.get('xo_immutable_backups_lifting_frozen')).toBe(1);
    expect(samples.get('xo_immutable_backups_coverage_gaps')).toBe(3);
    expect(samples.get('xo_immutable_backups_remote_healthy{remote="a"}')).toBe(0);
    expect(text).not.toContain('protected_units');
    expect(text).not.toContain('last_lock_success');
  });

  it.each([
    [true, 2, 0],
    [false, 0, 2],
  ])('counts restore points per remote (protectChains %s: %i protected, %i not)', async (protectChains, yes, no) => {
    const remote = await tempRemote();
    const metricsFile = path.join(remote.base, 'xo-immutable-backups.prom');
    const now = Date.now();
    await writeVhdChain(
      remote.root,
      'vm',
      'vdi',
      [10, 3, 1].map((days) => xoDatetime(now - days * DAY)),
    );
    await startDaemon(remote, { config: { metricsFile, protectChains }, healthCheckEveryMs: 100 });
    await waitFor(
      async () => (await readFile(metricsFile, 'utf8')).includes('restore_points_protected'),
      'the restore points to be counted',
    );
    const samples = parse(await readFile(metricsFile, 'utf8'));
    expect(samples.get('xo_immutable_backups_restore_points_protected{remote="r"}')).toBe(yes);
    expect(samples.get('xo_immutable_backups_restore_points_unprotected{remote="r"}')).toBe(no);
    expect(samples.get('xo_immutable_backups_restore_points_chain_unknown{remote="r"}')).toBe(0);
  });
});
