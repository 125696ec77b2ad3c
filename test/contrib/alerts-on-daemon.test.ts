import { spawnSync } from 'node:child_process';
import { readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { startDaemon } from '../support/daemon.js';
import { tempFolder, tempRemote, waitFor } from '../support/remote.js';
import { requireInCi } from '../support/tools.js';

const promtool = requireInCi('promtool', 'prometheus');
const RULES = path.resolve('contrib/prometheus/alerts.yml');
const alertNames = [...(await readFile(RULES, 'utf8')).matchAll(/^\s+- alert: (\w+)$/gm)].map((m) => m[1]!);

// The daemon's metrics file as Prometheus would hold it for 90 minutes: each sample a constant series with the labels
// node_exporter adds, except the timestamps, which move with the clock as a running daemon rewrites them.
function inputSeries(text: string): string[] {
  return text
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [, name, labels, value] = /^([a-z_:][a-z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)!;
      const all = [labels, 'instance="fs1:9100"', 'job="node"'].filter(Boolean).join(',');
      const values = name!.endsWith('_timestamp_seconds') ? '0+60x90' : `${value}x90`;
      return `      - series: '${name}{${all}}'\n        values: '${values}'`;
    });
}

// The alerts that fire after 90 minutes on that input, each with its labels: promtool is told to expect none, and
// names each one that fired instead.
async function firingOn(text: string): Promise<string[]> {
  const folder = await tempFolder();
  const tests = path.join(folder, 'daemon.test.yml');
  await writeFile(
    tests,
    [
      `rule_files: [${JSON.stringify(RULES)}]`,
      'evaluation_interval: 1m',
      'tests:',
      '  - interval: 1m',
      '    input_series:',
      ...inputSeries(text),
      '    alert_rule_test:',
      ...alertNames.map((name) => `      - eval_time: 90m\n        alertname: ${name}\n        exp_alerts: []`),
      '',
    ].join('\n'),
  );
  const run = spawnSync('promtool', ['test', 'rules', tests], { encoding: 'utf8' });
  const report = `${run.stdout}${run.stderr}`;
  expect(report).toMatch(/SUCCESS|alertname: \w+, time/);
  return [...report.matchAll(/Labels:\{([^}]*)\}/g)].map((m) => m[1]!).sort();
}

async function daemonMetrics(prepare: (root: string, base: string) => Promise<void>): Promise<string> {
  const remote = await tempRemote();
  const metricsFile = path.join(remote.base, 'metrics.prom');
  await prepare(remote.root, remote.base);
  await startDaemon(remote, { config: { metricsFile, rescanEveryMs: 1_000 }, healthCheckEveryMs: 100 });
  await waitFor(
    async () => (await readFile(metricsFile, 'utf8')).includes('restore_points_protected'),
    'the restore points to be counted',
  );
  return readFile(metricsFile, 'utf8');
}

describe.skipIf(!promtool)('the alert rules on metrics files a real daemon wrote', () => {
  it('stay silent while every backup is locked', async () => {
    const text = await daemonMetrics(async (root) => {
      await writeVmBackup(root, { datetime: xoDatetime(Date.now() - 3600_000) });
    });
    expect(await firingOn(text)).toEqual([]);
  });

  it('raise a coverage gap and an unprotected restore point for a disk the daemon refused', async () => {
    const text = await daemonMetrics(async (root, base) => {
      const backup = await writeVmBackup(root, { datetime: xoDatetime(Date.now() - 3600_000) });
      // A disk that is a symbolic link: never followed, so the daemon refuses to lock it.
      const disk = backup.units.find((u) => u.endsWith('.vhd'))!;
      await rm(disk);
      await symlink(path.join(base, 'elsewhere'), disk);
    });
    expect(text).toContain('xo_immutable_backups_coverage_gaps 1');
    expect(await firingOn(text)).toEqual([
      'alertname="XoImmutableCoverageGap", instance="fs1:9100", job="node", severity="critical"',
      'alertname="XoImmutableRestorePointsUnprotected", instance="fs1:9100", job="node", remote="r", severity="critical"',
    ]);
  });
});
