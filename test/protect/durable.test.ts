import { execFileSync } from 'node:child_process';
import { hash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { lstat, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Target, Within } from '../../src/attributes/adapter.js';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { systemClock } from '../../src/clock.js';
import { freeze, recordClock } from '../../src/clockguard/state.js';
import { ProvenBackups } from '../../src/protect/proven.js';
import { provenFile, saveProven } from '../../src/protect/proven-file.js';
import { IndexStore } from '../../src/index/store.js';
import { createLogger } from '../../src/log/logger.js';
import { lockUnits } from '../../src/protect/locker.js';
import { utcDay } from '../../src/remote/datetime.js';
import { identityOf } from '../../src/remote/identity.js';
import { oneUnitRequest } from '../support/lock-request.js';
import { stopBeforeCleanup, tempFolder, tempRemote } from '../support/remote.js';

// An ext4 image loop-mounted with a 10-minute journal commit: what was not synced stays in memory, and a copy of the
// image is what the disk would hold after a power loss at that moment.
async function slowCommitExt4(): Promise<{ image: string; mountPoint: string; base: string }> {
  const base = await tempFolder('xo-immutable-ext4-');
  const image = path.join(base, 'image');
  const mountPoint = path.join(base, 'mnt');
  await mkdir(mountPoint);
  execFileSync('truncate', ['-s', '64M', image]);
  execFileSync('mkfs.ext4', ['-q', '-F', image], { stdio: 'ignore' });
  execFileSync('mount', ['-o', 'loop,commit=600', image, mountPoint]);
  stopBeforeCleanup(async () => void execFileSync('umount', [mountPoint]));
  return { image, mountPoint, base };
}

// What a power loss right now would leave: the image as the loop device wrote it, mounted (its journal replayed).
function afterPowerLoss(image: string, base: string): string {
  const copy = path.join(base, `copy-${Date.now()}`);
  execFileSync('cp', ['--sparse=always', image, copy]);
  const mountPoint = `${copy}.mnt`;
  execFileSync('mkdir', [mountPoint]);
  execFileSync('mount', ['-o', 'loop', copy, mountPoint]);
  stopBeforeCleanup(async () => void execFileSync('umount', [mountPoint]));
  return mountPoint;
}

// One unit locked on an index whose disk commits slowly; `snapshot`: that disk as a power loss would leave it at the
// moment chattr +i runs.
async function lockOneUnitWithPowerLoss() {
  const remote = await tempRemote();
  const disk = await slowCommitExt4();
  const index = new IndexStore(path.join(disk.mountPoint, 'index'), 'r');
  await index.open();
  execFileSync('sync', ['-f', disk.mountPoint]);
  const { unit, instant, request } = await oneUnitRequest(remote.root, index);
  const flags = new IoctlAdapter();
  let snapshot: string | undefined;
  const attributes = Object.assign(Object.create(flags) as IoctlAdapter, {
    setImmutable: (within: Within, targets: readonly Target[], on: boolean) => {
      snapshot ??= afterPowerLoss(disk.image, disk.base);
      return flags.setImmutable(within, targets, on);
    },
  });
  const [result] = await lockUnits([request], attributes, systemClock, createLogger('fatal'));
  return { disk, index, unit, instant, snapshot: snapshot!, result };
}

describe('index entries survive a power loss', () => {
  it('are on disk, with their day folder, before chattr +i runs', async () => {
    const { disk, index, unit, instant, snapshot } = await lockOneUnitWithPowerLoss();

    const entry = path.relative(disk.mountPoint, index.entryPath(utcDay(instant), unit));
    expect(existsSync(path.join(snapshot, entry))).toBe(true);
  });

  // Written ahead by the identity the reconcile examined (a json's arrival, the common case), with the entries' group
  // commit: a unit is never locked before its window is durable, and its completion waits for no sync of its own.
  it("and a unit's new window record, before chattr +i runs", async () => {
    const { disk, index, unit, instant, snapshot, result } = await lockOneUnitWithPowerLoss();

    expect(result).toMatchObject({ indexed: true });
    const { ino, birthtimeNs } = identityOf(await lstat(unit, { bigint: true }));
    const record = path.relative(
      disk.mountPoint,
      path.join(index.windows.folder, hash('sha256', `${ino}:${birthtimeNs}`, 'hex')),
    );
    expect(JSON.parse(readFileSync(path.join(snapshot, record), 'utf8'))).toMatchObject({
      until: instant + 1,
      path: unit,
    });
  });

  it('keep the clock state and the proven backups once written', async () => {
    const disk = await slowCommitExt4();
    const indexPath = path.join(disk.mountPoint, 'index');
    await mkdir(indexPath);
    execFileSync('sync', ['-f', disk.mountPoint]);

    await recordClock(indexPath, 1234);
    await freeze(indexPath, { since: 'then', reason: 'a jump' });
    await saveProven(path.join(indexPath, 'r'), new ProvenBackups());
    const after = afterPowerLoss(disk.image, disk.base);

    const moved = (file: string): string => path.join(after, path.relative(disk.mountPoint, file));
    expect(readFileSync(moved(path.join(indexPath, 'clock.json')), 'utf8')).toContain('1234');
    expect(readFileSync(moved(path.join(indexPath, 'clock-frozen.json')), 'utf8')).toContain('a jump');
    expect(existsSync(moved(provenFile(path.join(indexPath, 'r'))))).toBe(true);
  });
});
