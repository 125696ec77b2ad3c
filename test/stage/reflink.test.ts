import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statfsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { DAY } from '../support/daemon.js';
import { canMake, mountFilesystem } from '../support/filesystems.js';
import { isImmutable, tempFolder } from '../support/remote.js';

const BIN = path.resolve('bin/xo-immutable-backups.js');
const MiB = 1024 * 1024;

// Every extent of the file is shared with another file (filefrag -v flags it "shared"): no data block of its own.
function allExtentsShared(file: string): boolean {
  const out = execFileSync('filefrag', ['-v', file], { encoding: 'utf8' });
  const extents = out.split('\n').filter((line) => /^\s*\d+:/.test(line));
  return extents.length > 0 && extents.every((line) => line.includes('shared'));
}

function usedBytes(mountPoint: string): number {
  execFileSync('sync', ['-f', mountPoint]);
  const stats = statfsSync(mountPoint);
  return (stats.blocks - stats.bfree) * stats.bsize;
}

describe.each(['xfs', 'btrfs'] as const)('stage-restore on %s', (type) => {
  it.skipIf(!canMake(type))('copies a locked 24 MiB disk by reflink: no new data blocks', async () => {
    const mountPoint = await mountFilesystem(type);
    const root = path.join(mountPoint, 'remote');
    mkdirSync(root);
    const vm = '6f1b2c3d-0000-4000-8000-00000000bbbb';
    const backup = await writeVmBackup(root, { vm, datetime: xoDatetime(Date.now() - DAY) });
    const disk = backup.units.find((u) => u.endsWith('.vhd'))!;
    writeFileSync(disk, randomBytes(24 * MiB));
    execFileSync('chattr', ['+i', '--', ...backup.units]);
    const base = await tempFolder();
    const config = path.join(base, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({ indexPath: path.join(base, 'index'), remotes: { r: { root, immutabilityDuration: '7d' } } }),
    );
    const to = path.join(mountPoint, 'staged');
    const before = usedBytes(mountPoint);
    const result = spawnSync(
      process.execPath,
      [BIN, 'stage-restore', '-c', config, '--remote', 'r', '--vm', vm, '--to', to, '--json'],
      { encoding: 'utf8', timeout: 20_000 },
    );
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const report = JSON.parse(result.stdout) as { reflinkedBytes: number; files: { path: string; method: string }[] };
    expect(report.files.map((f) => f.method)).toEqual(report.files.map(() => 'reflink'));
    const copy = path.join(to, path.relative(root, disk));
    expect(readFileSync(copy).equals(readFileSync(disk))).toBe(true);
    expect(allExtentsShared(copy)).toBe(true);
    const grown = usedBytes(mountPoint) - before;
    console.log(`stage-restore ${type}: 24 MiB staged by reflink, ${(grown / MiB).toFixed(2)} MiB more used`);
    expect(grown).toBeLessThan(4 * MiB);
    expect(isImmutable(copy)).toBe(false);
    expect(isImmutable(disk)).toBe(true);
  });
});
