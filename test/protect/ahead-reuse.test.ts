import { execFileSync } from 'node:child_process';
import { lstatSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { IndexStore } from '../../src/index/store.js';
import { createLogger } from '../../src/log/logger.js';
import { lockUnits } from '../../src/protect/locker.js';
import { identityOf } from '../../src/remote/identity.js';
import { oneUnitRequest } from '../support/lock-request.js';
import { stopBeforeCleanup, tempFolder } from '../support/remote.js';

// An ext4 with 128-byte inodes keeps no birth time: a window record is named by the inode number alone, which a file
// created after a delete takes again.
async function ext4WithoutBirthTimes(): Promise<string> {
  const base = await tempFolder('xo-immutable-nobirth-');
  const mountPoint = path.join(base, 'mnt');
  await mkdir(mountPoint);
  const image = path.join(base, 'image');
  execFileSync('truncate', ['-s', '64M', image]);
  execFileSync('mkfs.ext4', ['-q', '-F', '-I', '128', image], { stdio: 'ignore' });
  execFileSync('mount', ['-o', 'loop', image, mountPoint]);
  stopBeforeCleanup(async () => {
    execFileSync('chattr', ['-R', '-i', mountPoint], { stdio: 'ignore' });
    execFileSync('umount', [mountPoint]);
  });
  return mountPoint;
}

describe('a window record is only ever kept for what the flag helper locked', () => {
  // A client with XO's credentials writes a junk json, lets a reconcile examine it, and deletes it before its lock
  // batch. Without birth times the next file created takes its inode number: a record kept for the deleted json would
  // hand that file its window, and its arrival (the earliest recorded), which dates a backup from then, not from now.
  it('keeps none for a json deleted between its reconcile and its lock', async () => {
    const root = await ext4WithoutBirthTimes();
    const index = new IndexStore(path.join(await tempFolder(), 'index'), 'r');
    await index.open();
    const { unit, instant, request } = await oneUnitRequest(root, index);
    const examined = identityOf(lstatSync(unit, { bigint: true }));
    expect(examined.birthtimeNs ?? '0').toBe('0');
    request.backup.arrived = instant;

    await rm(unit);
    const [result] = await lockUnits([request], new IoctlAdapter(), { now: () => instant }, createLogger('silent'));
    expect(result).toMatchObject({ outcome: { status: 'vanished' }, indexed: false });

    // XO's next json, where the inode number is free again.
    const json = path.join(root, '20261201T060000Z.json');
    await writeFile(json, '{}');
    const reborn = identityOf(lstatSync(json, { bigint: true }));
    expect(reborn.ino).toBe(examined.ino);
    expect(await index.windows.read(reborn)).toBeUndefined();
  });
});
