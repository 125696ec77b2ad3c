import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runStatus } from '../../src/cli/status.js';
import { systemClock } from '../../src/clock.js';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import type { DaemonStatus } from '../../src/status/daemon-status.js';
import { startDaemon } from '../support/daemon.js';
import { allImmutable, tempFolder, tempRemote, waitFor, type TestRemote, writeConfigFile } from '../support/remote.js';

// Each figure the daemon shows (status.json, the metrics file, `status`) is true when it is written: the tests look
// at the first one written after the event, with health checks (and so status writes) every 50 ms.
const EVERY_MS = 50;

function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^([a-z_:][a-z0-9_:]*(?:\{[^}]*\})?) (-?[0-9.e+]+)$/i.exec(line);
    if (match !== null) samples.set(match[1]!, Number(match[2]));
  }
  return samples;
}

// The first metrics file written after `since` (its heartbeat, in seconds, is later).
async function metricsWrittenAfter(file: string, since: number): Promise<Map<string, number>> {
  let samples = new Map<string, number>();
  await waitFor(async () => {
    samples = parseMetrics(await readFile(file, 'utf8').catch(() => ''));
    return (samples.get('xo_immutable_backups_heartbeat_timestamp_seconds') ?? 0) * 1000 > since;
  }, 'the metrics file to be written again');
  return samples;
}

async function statusWrittenAfter(indexPath: string, since: number): Promise<DaemonStatus> {
  let status: DaemonStatus | undefined;
  await waitFor(async () => {
    status =
      (JSON.parse(
        await readFile(path.join(indexPath, 'status.json'), 'utf8').catch(() => 'null'),
      ) as DaemonStatus | null) ?? undefined;
    return status !== undefined && Date.parse(status.heartbeat) > since;
  }, 'status.json to be written again');
  return status!;
}

// `status` as an admin runs it, against the daemon running in this process.
async function statusLines(remote: TestRemote): Promise<string[]> {
  const config = await writeConfigFile(remote);
  const lines: string[] = [];
  await runStatus({ config, json: false }, { out: (l) => lines.push(l), err: (l) => lines.push(l) }, systemClock);
  return lines;
}

describe('counters right after the event', () => {
  it('protected_units counts the units of a backup locked after start, not only at the lift pass', async () => {
    const remote = await tempRemote();
    const metricsFile = path.join(remote.base, 'metrics.prom');
    await startDaemon(remote, { config: { metricsFile }, healthCheckEveryMs: EVERY_MS });
    expect(
      parseMetrics(await readFile(metricsFile, 'utf8')).get('xo_immutable_backups_protected_units{remote="r"}'),
    ).toBe(0);

    const backup = await writeVmBackup(remote.root, {
      datetime: xoDatetime(Date.now()),
      disks: [{ type: 'flat' }, { type: 'vhd-directory' }],
    });
    await waitFor(() => allImmutable(backup.units), 'the backup to be locked');
    const locked = Date.now();
    const samples = await metricsWrittenAfter(metricsFile, locked);
    expect(samples.get('xo_immutable_backups_protected_units{remote="r"}')).toBe(backup.units.length);
    expect(await statusLines(remote)).toContain(`  protected: ${backup.units.length} unit(s) in 1 backup(s)`);
  });

  it('counts a remote that became unavailable as an error in status.json and `status`', async () => {
    const remote = await tempRemote();
    // A remote XO has written to (an empty one waits for XO's first write, which is not an outage).
    await writeVmBackup(remote.root, { datetime: xoDatetime(Date.now()) });
    const { logs } = await startDaemon(remote, { healthCheckEveryMs: EVERY_MS });
    expect((await statusWrittenAfter(remote.indexPath, 0)).errors).toBe(0);

    const away = `${remote.root}-away`;
    await rename(remote.root, away);
    try {
      await waitFor(
        () => logs.some((l) => l.level === 'error' && l.msg.startsWith('remote r is unavailable')),
        'the outage to be logged',
      );
      const logged = Date.now();
      const status = await statusWrittenAfter(remote.indexPath, logged);
      expect(status.remotes[0]?.healthy).toBe(false);
      expect(status.errors).toBe(1);
      const lines = await statusLines(remote);
      expect(lines).toContain('problems:  1 error(s), 0 security warning(s) since start');
      expect(lines.some((l) => l.startsWith('remote r: UNAVAILABLE'))).toBe(true);
      // Still one outage, however many checks see it.
      expect((await statusWrittenAfter(remote.indexPath, Date.now())).errors).toBe(1);
    } finally {
      await rename(away, remote.root);
    }
  });

  it('pending_rechecks drops to 0 once a half-written json is complete and its backup locked', async () => {
    const remote = await tempRemote();
    const metricsFile = path.join(remote.base, 'metrics.prom');
    await startDaemon(remote, { config: { metricsFile }, healthCheckEveryMs: EVERY_MS });

    // XO's json still being written: the folder arrives with a json that does not parse yet.
    const staging = path.join(await tempFolder(), 'remote');
    const backup = await writeVmBackup(staging, { vm: 'vm', datetime: xoDatetime(Date.now()) });
    const json = backup.label;
    const content = await readFile(json, 'utf8');
    await writeFile(json, content.slice(0, Math.floor(content.length / 2)));
    await mkdir(path.join(remote.root, 'xo-vm-backups'), { recursive: true });
    await rename(path.join(staging, 'xo-vm-backups', 'vm'), path.join(remote.root, 'xo-vm-backups', 'vm'));
    const inRemote = (p: string): string => path.join(remote.root, path.relative(staging, p));
    await waitFor(
      async () =>
        (await metricsWrittenAfter(metricsFile, Date.now())).get('xo_immutable_backups_pending_rechecks') === 1,
      'a recheck of the half-written json',
    );

    await writeFile(inRemote(json), content);
    await waitFor(() => allImmutable(backup.units.map(inRemote)), 'the completed backup to be locked');
    const samples = await metricsWrittenAfter(metricsFile, Date.now());
    expect(samples.get('xo_immutable_backups_pending_rechecks')).toBe(0);
    expect(samples.get('xo_immutable_backups_coverage_gaps')).toBe(0);
  });
});
