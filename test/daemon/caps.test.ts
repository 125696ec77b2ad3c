import { readFileSync } from 'node:fs';
import { mkdir, readFile, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { runStatus } from '../../src/cli/status.js';
import { systemClock } from '../../src/clock.js';
import { writeConfigBackup, writeVmBackup, xoDatetime, type WrittenBackup } from '../../src/demo/sample-remote.js';
import type { DaemonStatus } from '../../src/status/daemon-status.js';
import type { StatusReport } from '../../src/status/report.js';
import { startDaemon, type LogLine } from '../support/daemon.js';
import { allImmutable, tempRemote, waitFor, writeConfigFile, type TestRemote } from '../support/remote.js';

// A flood of folders and units made by someone holding XO's credentials: the daemon's watches and index entries stop
// growing at their caps, it says so before (80%) and at the cap, and every backup is still locked.
const EVERY_MS = 50;
const HOUR = 3_600_000;

function metricsOf(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^([a-z_:][a-z0-9_:]*(?:\{[^}]*\})?) (-?[0-9.e+]+)$/i.exec(line);
    if (match !== null) samples.set(match[1]!, Number(match[2]));
  }
  return samples;
}

async function daemonStatus(remote: TestRemote): Promise<DaemonStatus> {
  return JSON.parse(await readFile(path.join(remote.indexPath, 'status.json'), 'utf8')) as DaemonStatus;
}

async function statusText(remote: TestRemote, json = false): Promise<string> {
  const config = await writeConfigFile(remote);
  const lines: string[] = [];
  await runStatus({ config, json }, { out: (l) => lines.push(l), err: (l) => lines.push(l) }, systemClock);
  return lines.join('\n');
}

const validateStatus = new Ajv({ allErrors: true, strict: false, validateFormats: false }).compile(
  JSON.parse(readFileSync('docs/status.schema.json', 'utf8')) as object,
);

function capLines(logs: readonly LogLine[], cap: string): LogLine[] {
  return logs.filter((l) => l.cap === cap);
}

async function countEntries(indexFolder: string): Promise<number> {
  let count = 0;
  for (const day of await readdir(indexFolder, { withFileTypes: true }))
    if (day.isDirectory() && /^\d{4}-\d{2}-\d{2}$/.test(day.name))
      count += (await readdir(path.join(indexFolder, day.name))).length;
  return count;
}

// inotify watches this process holds, as the kernel counts them (one `inotify wd:` line each in the fd's fdinfo).
async function inotifyWatches(): Promise<number> {
  let watches = 0;
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target !== 'anon_inode:inotify') continue;
    const info = await readFile(`/proc/self/fdinfo/${fd}`, 'utf8').catch(() => '');
    watches += info.split('\n').filter((line) => line.startsWith('inotify wd:')).length;
  }
  return watches;
}

describe('caps on watched folders and index entries', () => {
  it('stops watching at maxWatchedFolders, warns at 80% first, and the rescan still locks every backup', async () => {
    const remote = await tempRemote();
    const metricsFile = path.join(remote.base, 'metrics.prom');
    await mkdir(path.join(remote.root, 'xo-vm-backups'));
    const remotes = [
      { id: 'r', root: remote.root, immutabilityDurationMs: 7 * 86_400_000, rebuildIndexOnStart: false },
    ];
    const { logs } = await startDaemon(remote, {
      config: { remotes: [{ ...remotes[0]!, maxWatchedFolders: 5 }], rescanEveryMs: 1_000, metricsFile },
      healthCheckEveryMs: EVERY_MS,
    });
    // The VM tree's own watch, then one per VM folder: 8 VM folders would need 9.
    const written: WrittenBackup[] = [];
    for (let i = 0; i < 8; i++)
      written.push(await writeVmBackup(remote.root, { vm: `vm-${i}`, datetime: xoDatetime(Date.now() - HOUR) }));
    await waitFor(() => allImmutable(written.flatMap((b) => [b.label, ...b.units])), 'every backup to be locked');
    // A second backup in every VM folder, watched or not: those in unwatched folders wait for the rescan (1 s here).
    for (let i = 0; i < 8; i++)
      written.push(await writeVmBackup(remote.root, { vm: `vm-${i}`, datetime: xoDatetime(Date.now() - HOUR / 2) }));
    await waitFor(() => allImmutable(written.flatMap((b) => [b.label, ...b.units])), 'every new backup to be locked');

    const lines = capLines(logs, 'maxWatchedFolders');
    const warning = lines.findIndex((l) => l.level === 'warn');
    const error = lines.findIndex((l) => l.level === 'error');
    expect(warning).toBeGreaterThanOrEqual(0);
    expect(lines[warning]?.msg).toMatch(/watching 4 folders, 80% of the cap \(maxWatchedFolders 5\)/);
    expect(error).toBeGreaterThan(warning);
    expect(lines[error]?.msg).toMatch(
      /watching 5 folders, the cap .*locked by the periodic rescan only, up to 1 s late/,
    );
    // Once per crossing, not at every new folder.
    expect(lines.filter((l) => l.level === 'error')).toHaveLength(1);

    const since = Date.now();
    await waitFor(async () => Date.parse((await daemonStatus(remote)).heartbeat) > since, 'status.json again');
    expect((await daemonStatus(remote)).remotes[0]?.caps?.watchedFolders).toEqual({
      count: 5,
      max: 5,
      level: 'reached',
    });
    const metrics = metricsOf(await readFile(metricsFile, 'utf8'));
    expect(metrics.get('xo_immutable_backups_watched_folders{remote="r"}')).toBe(5);
    expect(metrics.get('xo_immutable_backups_watched_folders_cap{remote="r"}')).toBe(5);
    expect(metrics.get('xo_immutable_backups_cap_level{remote="r",cap="maxWatchedFolders"}')).toBe(2);
    expect(metrics.get('xo_immutable_backups_cap_level{remote="r",cap="maxIndexEntries"}')).toBe(0);
    expect(await statusText(remote)).toMatch(/WATCH CAP: 5 of 5 folders watched/);
    const report = JSON.parse(await statusText(remote, true)) as StatusReport;
    expect(validateStatus(report), JSON.stringify(validateStatus.errors)).toBe(true);
    expect(report.remotes[0]?.caps?.watchedFolders).toEqual({ count: 5, max: 5, level: 'reached' });
  });

  it('counts schedule folders against maxWatchedFolders too, and still locks the config backups in each', async () => {
    const remote = await tempRemote();
    await mkdir(path.join(remote.root, 'xo-config-backups'));
    const before = await inotifyWatches();
    const { daemon, logs } = await startDaemon(remote, {
      config: {
        remotes: [
          {
            id: 'r',
            root: remote.root,
            immutabilityDurationMs: 7 * 86_400_000,
            rebuildIndexOnStart: false,
            maxWatchedFolders: 3,
          },
        ],
        rescanEveryMs: 1_000,
      },
      healthCheckEveryMs: EVERY_MS,
    });
    // Each schedule folder is a watch (chokidar), each date folder in it another.
    const written: WrittenBackup[] = [];
    for (let i = 0; i < 6; i++)
      written.push(await writeConfigBackup(remote.root, `schedule-${i}`, xoDatetime(Date.now() - HOUR)));
    await waitFor(() => allImmutable(written.flatMap((b) => b.units)), 'every config backup to be locked');
    // The cap's 3, and the root's own watch.
    expect((await inotifyWatches()) - before).toBeLessThanOrEqual(3 + 1);
    expect(capLines(logs, 'maxWatchedFolders').filter((l) => l.level === 'error')).toHaveLength(1);
    const since = Date.now();
    await waitFor(async () => Date.parse((await daemonStatus(remote)).heartbeat) > since, 'status.json again');
    expect((await daemonStatus(remote)).remotes[0]?.caps?.watchedFolders).toEqual({
      count: 3,
      max: 3,
      level: 'reached',
    });
    await daemon.stop();
  });

  it('locks units beyond maxIndexEntries without an entry, after warning at 80%, and rebuild-index recovers them', async () => {
    const remote = await tempRemote();
    const metricsFile = path.join(remote.base, 'metrics.prom');
    const remotes = [
      { id: 'r', root: remote.root, immutabilityDurationMs: 7 * 86_400_000, rebuildIndexOnStart: false },
    ];
    const { daemon, logs } = await startDaemon(remote, {
      config: { remotes: [{ ...remotes[0]!, maxIndexEntries: 10 }], rescanEveryMs: 1_000, metricsFile },
      healthCheckEveryMs: EVERY_MS,
    });
    // One backup after the other, each waited for: the count climbs through 80% before it reaches the cap.
    const written: WrittenBackup[] = [];
    for (let i = 0; i < 8; i++) {
      const backup = await writeVmBackup(remote.root, { vm: `vm-${i}`, datetime: xoDatetime(Date.now() - HOUR) });
      written.push(backup);
      await waitFor(() => allImmutable([backup.label, ...backup.units]), `backup ${i} to be locked`);
    }
    const units = [...new Set(written.flatMap((b) => [b.label, ...b.units]))];
    expect(units.length).toBeGreaterThan(12);
    expect(allImmutable(units)).toBe(true);
    expect(await countEntries(path.join(remote.indexPath, 'r'))).toBe(10);

    const lines = capLines(logs, 'maxIndexEntries');
    const warning = lines.findIndex((l) => l.level === 'warn');
    const error = lines.findIndex((l) => l.level === 'error' && /the cap/.test(l.msg));
    expect(warning).toBeGreaterThanOrEqual(0);
    expect(lines[warning]?.msg).toMatch(/holds \d+ entries, \d+% of the cap \(maxIndexEntries 10\)/);
    expect(error).toBeGreaterThan(warning);
    expect(lines[error]?.msg).toMatch(/holds 10 entries, the cap .*lift will never unlock them/);
    expect(lines.some((l) => l.level === 'error' && /unit\(s\) locked without an index entry/.test(l.msg))).toBe(true);

    const since = Date.now();
    await waitFor(async () => Date.parse((await daemonStatus(remote)).heartbeat) > since, 'status.json again');
    expect((await daemonStatus(remote)).remotes[0]?.caps?.indexEntries).toEqual({
      count: 10,
      max: 10,
      level: 'reached',
    });
    const metrics = metricsOf(await readFile(metricsFile, 'utf8'));
    expect(metrics.get('xo_immutable_backups_index_entries{remote="r"}')).toBe(10);
    expect(metrics.get('xo_immutable_backups_index_entries_cap{remote="r"}')).toBe(10);
    expect(metrics.get('xo_immutable_backups_cap_level{remote="r",cap="maxIndexEntries"}')).toBe(2);
    expect(await statusText(remote)).toMatch(/INDEX CAP: 10 of 10 entries/);
    await daemon.stop();

    // Restarted with rebuildIndexOnStart: the rebuild is not capped, so every unit locked without an entry gets one
    // (lift can free them once their window ends), and the daemon starts and says the index is over its cap.
    const restarted = await startDaemon(remote, {
      config: { remotes: [{ ...remotes[0]!, maxIndexEntries: 10, rebuildIndexOnStart: true }] },
    });
    expect(await countEntries(path.join(remote.indexPath, 'r'))).toBe(units.length);
    expect(restarted.logs.find((l) => l.cap === 'maxIndexEntries' && l.level === 'error')?.indexEntries).toBe(
      units.length,
    );
  });
});
