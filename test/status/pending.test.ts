import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AttributesAdapter, PathOutcome } from '../../src/attributes/adapter.js';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { runStatus } from '../../src/cli/status.js';
import { systemClock } from '../../src/clock.js';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { startDaemon } from '../support/daemon.js';
import { tempRemote, waitFor } from '../support/remote.js';

// The real adapter, but a lock of `failing` fails as the filesystem could (EIO), nothing changed.
function failingOn(failing: string): AttributesAdapter {
  const real = new IoctlAdapter();
  return {
    isImmutable: (within, paths) => real.isImmutable(within, paths),
    checkClear: (within, targets) => real.checkClear(within, targets),
    async setImmutable(within, targets, immutable): Promise<PathOutcome[]> {
      const rest = targets.filter((t) => t.path !== failing);
      const outcomes = new Map((await real.setImmutable(within, rest, immutable)).map((o) => [o.path, o]));
      return targets.map(
        (t) => outcomes.get(t.path) ?? { path: t.path, status: 'failed', code: 'EIO', message: 'Input/output error' },
      );
    },
  };
}

describe('units left pending', () => {
  it('are counted in the metrics and listed by status, text and json', async () => {
    const remote = await tempRemote();
    const metricsFile = path.join(remote.base, 'xo-immutable-backups.prom');
    const backup = await writeVmBackup(remote.root, {
      datetime: xoDatetime(Date.now() - 3600_000),
      disks: [{ type: 'vhd-directory' }],
    });
    // The flag helper fails on the VHD directory (an I/O error): its entry stays written ahead, with no identity.
    const directory = backup.units.find((u) => u.includes(`${path.sep}data${path.sep}`))!;
    const { daemon } = await startDaemon(remote, { config: { metricsFile }, attributes: failingOn(directory) });
    await waitFor(
      async () => (await readFile(metricsFile, 'utf8')).includes('xo_immutable_backups_pending_units{remote="r"} 1'),
      'the metric to count the pending unit',
    );
    await daemon.stop();

    const config = path.join(remote.base, 'config.json');
    await writeFile(
      config,
      JSON.stringify({
        indexPath: remote.indexPath,
        remotes: { r: { root: remote.root, immutabilityDuration: '7d' } },
      }),
    );
    const out: string[] = [];
    const io = { out: (line: string) => out.push(line), err: () => undefined };
    await runStatus({ config, json: true }, io, systemClock);
    expect(JSON.parse(out.join('\n'))).toMatchObject({ remotes: [{ pendingUnits: 1, pendingPaths: [directory] }] });
    out.length = 0;
    await runStatus({ config, json: false }, io, systemClock);
    expect(out.join('\n')).toContain('PENDING:   1 unit(s) with no identity recorded');
    expect(out.join('\n')).toContain(directory);
  });
});
