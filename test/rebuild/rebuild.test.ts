import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { writeConfigBackup, writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { entryName } from '../../src/index/entry.js';
import { IndexStore } from '../../src/index/store.js';
import { liftRemote } from '../../src/lift/apply.js';
import { rebuildIndex } from '../../src/rebuild/rebuild.js';
import type { RemoteContext } from '../../src/context/remote-context.js';
import { utcDay } from '../../src/remote/datetime.js';
import { DAY, startDaemon } from '../support/daemon.js';
import { allImmutable, isImmutable, tempRemote, type TestRemote, writeConfigFile } from '../support/remote.js';
import { windowMsOf } from '../../src/remote/model.js';
import { remoteContextOf } from '../support/remote-context.js';

const WEEK = 7 * DAY;
const attributes = new IoctlAdapter();
const t = Date.UTC(2026, 9, 1, 6, 15, 0);

async function contextOf(remote: TestRemote): Promise<RemoteContext> {
  const index = new IndexStore(remote.indexPath, 'r');
  await index.open();
  return remoteContextOf(remote.root, index, WEEK);
}

describe('rebuild-index on ext4 with real chattr', () => {
  it('indexes every immutable unit after the index was lost, orphans included, so one lift frees them all', async () => {
    const remote = await tempRemote();
    const vm = await writeVmBackup(remote.root, {
      vm: 'vm',
      datetime: xoDatetime(t),
      disks: [{ type: 'flat' }, { type: 'vhd-directory' }],
    });
    const config = await writeConfigBackup(remote.root, 's', xoDatetime(t));
    const { daemon } = await startDaemon(remote, { clock: { now: () => t + 3600_000 } });
    await daemon.stop();
    // XO's retention deleted the json of a run whose disks stay (an orphan), then the index was lost.
    execFileSync('chattr', ['-i', vm.label]);
    await unlink(vm.label);
    await rm(path.join(remote.indexPath, 'r'), { recursive: true });
    const locked = [...vm.units.filter((u) => u !== vm.label), config.label];

    const report = await rebuildIndex(await contextOf(remote), attributes, { importFrom: [], now: t + DAY });
    expect(report.indexed.map((i) => i.path).sort()).toEqual([...locked].sort());
    expect(report.indexed.every((i) => i.day === utcDay(t))).toBe(true);
    expect(report.undated).toEqual([]);

    const lifted = await liftRemote(await contextOf(remote), attributes, {
      now: t + windowMsOf(WEEK) + 1000,
      dryRun: false,
      all: false,
    });
    expect(lifted.failed).toEqual([]);
    for (const unit of [...vm.units.filter((u) => u !== vm.label), ...config.units])
      expect(isImmutable(unit), unit).toBe(false);
  });

  it("imports the prior art's index and reports immutable units it cannot date instead of guessing", async () => {
    const remote = await tempRemote();
    const vm = await writeVmBackup(remote.root, { vm: 'vm', datetime: xoDatetime(t) });
    execFileSync('chattr', ['+i', ...vm.units]);
    // The prior art's layout: <day>/<sha256(path)> holding the bare path, bucketed by its own (wrong) day.
    const legacy = path.join(remote.base, 'legacy-index');
    await mkdir(path.join(legacy, '2026-10-05'), { recursive: true });
    for (const unit of vm.units) await writeFile(path.join(legacy, '2026-10-05', entryName(unit)), unit);
    await writeFile(path.join(legacy, '2026-10-05', entryName('/etc/passwd')), '/etc/passwd');
    const undatable = path.join(remote.root, 'xo-vm-backups', 'vm', 'vdis', 'j', 'v', 'data', 'c0ffee-uuid.vhd');
    await mkdir(undatable, { recursive: true });
    execFileSync('chattr', ['+i', undatable]);

    const report = await rebuildIndex(await contextOf(remote), attributes, { importFrom: [legacy], now: t + DAY });
    expect(report.imported).toBe(vm.units.length);
    // The day comes from the backup's name, not from the prior art's bucket.
    expect(report.indexed.map((i) => i.day)).toEqual(vm.units.map(() => utcDay(t)));
    expect(report.undated).toEqual([undatable]);
    expect(report.skippedLegacy).toEqual([{ path: '/etc/passwd', reason: `not inside ${remote.root}` }]);
    expect(readdirSync(path.join(remote.indexPath, 'r'))).toEqual([utcDay(t)]);
    expect(allImmutable(vm.units)).toBe(true);
  });

  it('indexes nothing the prior art names through a symbolic link out of the remote', async () => {
    const remote = await tempRemote();
    const outside = path.join(remote.base, 'outside');
    await mkdir(outside);
    const planted = path.join(outside, `${xoDatetime(t)}.json`);
    await writeFile(planted, '{}');
    execFileSync('chattr', ['+i', planted]);
    await mkdir(path.join(remote.root, 'xo-vm-backups'), { recursive: true });
    await symlink(outside, path.join(remote.root, 'xo-vm-backups', 'linked'));
    const named = path.join(remote.root, 'xo-vm-backups', 'linked', path.basename(planted));
    const legacy = path.join(remote.base, 'legacy-index');
    await mkdir(path.join(legacy, '2026-10-05'), { recursive: true });
    await writeFile(path.join(legacy, '2026-10-05', entryName(named)), named);

    const report = await rebuildIndex(await contextOf(remote), attributes, { importFrom: [legacy], now: t + DAY });
    expect(report.indexed).toEqual([]);
    expect(report.skippedLegacy).toEqual([{ path: named, reason: 'not a file or folder of a backup of this remote' }]);
    expect(existsSync(path.join(remote.indexPath, 'r', utcDay(t), entryName(named)))).toBe(false);
  });

  it('with rebuildIndexOnStart, the daemon finds what its index lost and lifts it when its window has passed', async () => {
    const remote = await tempRemote();
    const vm = await writeVmBackup(remote.root, { vm: 'vm', datetime: xoDatetime(t) });
    execFileSync('chattr', ['+i', ...vm.units]);
    const later = t + windowMsOf(WEEK) + 3600_000;
    const plain = await startDaemon(remote, { clock: { now: () => later } });
    await plain.daemon.stop();
    expect(allImmutable(vm.units)).toBe(true);
    const rebuilding = await startDaemon(remote, {
      clock: { now: () => later },
      config: { remotes: [{ id: 'r', root: remote.root, immutabilityDurationMs: WEEK, rebuildIndexOnStart: true }] },
    });
    for (const unit of vm.units) expect(isImmutable(unit), unit).toBe(false);
    expect(rebuilding.logs.some((l) => l.msg.startsWith('rebuilt the index of remote r'))).toBe(true);
  });

  it('gives a merged VHD directory a newer entry when a newer alias points to it, so it is not lifted early', async () => {
    const remote = await tempRemote();
    const a = await writeVmBackup(remote.root, {
      vm: 'vm',
      datetime: xoDatetime(t),
      disks: [{ type: 'vhd-directory' }],
    });
    const { daemon } = await startDaemon(remote, { clock: { now: () => t + 3600_000 } });
    await daemon.stop();
    // A later run C (5 days on) was merged into A's VHD directory: C's alias points to it. C's entries were lost.
    const alias = a.units.find((u) => u.endsWith('.alias.vhd'))!;
    const dataDir = a.units.find((u) => u.includes('/data/'))!;
    const c = xoDatetime(t + 5 * DAY);
    const cAlias = path.join(path.dirname(alias), `${c}.alias.vhd`);
    await writeFile(cAlias, `data/${path.basename(dataDir)}`);
    const cJson = path.join(path.dirname(a.label), `${c}.json`);
    await writeFile(cJson, '{}');
    execFileSync('chattr', ['+i', cAlias, cJson]);

    const report = await rebuildIndex(await contextOf(remote), attributes, { importFrom: [], now: t + 6 * DAY });
    expect(report.indexed.map((i) => [i.path, i.day]).sort()).toEqual(
      [
        [cAlias, utcDay(t + 5 * DAY)],
        [cJson, utcDay(t + 5 * DAY)],
        [dataDir, utcDay(t + 5 * DAY)],
      ].sort(),
    );
    await liftRemote(await contextOf(remote), attributes, { now: t + 8 * DAY, dryRun: false, all: false });
    expect(isImmutable(a.label)).toBe(false);
    expect(isImmutable(dataDir)).toBe(true);
  });

  it("imports the prior art's locks on the files inside config and pool date folders", async () => {
    const remote = await tempRemote();
    const config = await writeConfigBackup(remote.root, 's', xoDatetime(t));
    const files = config.units.filter((u) => u !== config.label);
    execFileSync('chattr', ['+i', ...files]);
    const index = new IndexStore(remote.indexPath, 'r');
    await index.open();
    // The prior art's own entries, left in the index folder the admin kept.
    await mkdir(path.join(remote.indexPath, 'r', '2026-10-03'), { recursive: true });
    for (const file of files) await writeFile(path.join(remote.indexPath, 'r', '2026-10-03', entryName(file)), file);
    await writeFile(path.join(remote.root, 'immutability.json'), '{}');
    execFileSync('chattr', ['+i', path.join(remote.root, 'immutability.json')]);

    const report = await rebuildIndex(await contextOf(remote), attributes, { importFrom: [], now: t + DAY });
    expect(report.imported).toBe(files.length);
    expect(report.indexed.map((i) => i.day)).toEqual(files.map(() => utcDay(t)));
    expect(readdirSync(path.join(remote.indexPath, 'r'))).toEqual([utcDay(t)]);
    const lifted = await liftRemote(await contextOf(remote), attributes, {
      now: t + 8 * DAY,
      dryRun: false,
      all: false,
    });
    expect(lifted.failed).toEqual([]);
    execFileSync('rm', ['-rf', config.label]);
  });

  it('runs from the CLI with --json', async () => {
    const remote = await tempRemote();
    const vm = await writeVmBackup(remote.root, { vm: 'vm', datetime: xoDatetime(Date.now()) });
    execFileSync('chattr', ['+i', ...vm.units]);
    const config = await writeConfigFile(remote);
    const result = spawnSync(
      process.execPath,
      [path.resolve('bin/xo-immutable-backups.js'), 'rebuild-index', '--config', config, '--json'],
      { encoding: 'utf8', timeout: 20_000 },
    );
    expect(result.status).toBe(0);
    const parsed = JSON.parse(result.stdout) as { remotes: { remote: string; indexed: unknown[] }[] };
    expect(parsed.remotes[0]?.indexed).toHaveLength(vm.units.length);
    expect(existsSync(path.join(remote.indexPath, 'r'))).toBe(true);
  });
});
