import { spawnSync } from 'node:child_process';
import { copyFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeConfigBackup, writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { DAY, startDaemon } from '../support/daemon.js';
import { daemonFamilies, metricFamilies } from '../support/metrics.js';
import { tempRemote, waitFor } from '../support/remote.js';
import { requireInCi } from '../support/tools.js';
import { writeVhdChain } from '../support/vhd-chain.js';

const promtool = requireInCi('promtool', 'prometheus');

// The file the alert rules and the dashboard are written against, as a real daemon writes it. With
// XO_METRICS_SAMPLE set (.ci/run), a copy is kept there for CI's own `promtool check metrics` step.
describe('the metrics file a daemon writes', () => {
  it('holds every metric family, and promtool check metrics accepts it', async () => {
    const remote = await tempRemote();
    const metricsFile = path.join(remote.base, 'xo-immutable-backups.prom');
    const now = Date.now();
    await writeVmBackup(remote.root, { datetime: xoDatetime(now - 3600_000), disks: [{ type: 'vhd-directory' }] });
    await writeConfigBackup(remote.root, 's', xoDatetime(now - 3600_000));
    await writeVhdChain(
      remote.root,
      'vm2',
      'vdi',
      [3, 1].map((days) => xoDatetime(now - days * DAY)),
    );
    await startDaemon(remote, { config: { metricsFile, rescanEveryMs: 1_000 }, healthCheckEveryMs: 100 });

    const expected = daemonFamilies();
    const missing = async (): Promise<string[]> => {
      const written = metricFamilies(await readFile(metricsFile, 'utf8'));
      return [...expected.keys()].filter((name) => !written.has(name));
    };
    await waitFor(async () => (await missing()).length === 0, 'every metric family in the file', 20_000).catch(
      async (error: unknown) => {
        throw new Error(`the daemon never wrote ${(await missing()).join(', ')}`, { cause: error });
      },
    );
    const text = await readFile(metricsFile, 'utf8');
    const written = metricFamilies(text);
    for (const [name, labels] of expected) expect([...written.get(name)!].sort(), name).toEqual([...labels].sort());

    if (process.env.XO_METRICS_SAMPLE !== undefined) await copyFile(metricsFile, process.env.XO_METRICS_SAMPLE);
    if (!promtool) return;
    // promtool reads the file on stdin and lints it (names, units, HELP and TYPE): any finding is a failure.
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(`${check.stdout}${check.stderr}`).toBe('');
    expect(check.status).toBe(0);
  });
});
