import { existsSync, lstatSync } from 'node:fs';
import { mkdir, rename, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { PathOutcome, Target, Within } from '../../src/attributes/adapter.js';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { IndexStore } from '../../src/index/store.js';
import { createLogger } from '../../src/log/logger.js';
import { lockUnits } from '../../src/protect/locker.js';
import { utcDay } from '../../src/remote/datetime.js';
import { identityOf } from '../../src/remote/identity.js';
import { FakeAttributes } from '../support/fake-attributes.js';
import { oneUnitRequest } from '../support/lock-request.js';
import { isImmutable, tempRemote } from '../support/remote.js';

describe('lockUnits', () => {
  it('writes each entry before chattr runs, and completes it with the identity after', async () => {
    const remote = await tempRemote();
    const index = new IndexStore(remote.indexPath, 'r');
    await index.open();
    const { unit, instant, request } = await oneUnitRequest(remote.root, index);
    const seenAtChattr: boolean[] = [];
    const fake = new FakeAttributes();
    const watching = Object.assign(Object.create(fake) as FakeAttributes, {
      async setImmutable(within: Within, targets: readonly Target[], immutable: boolean): Promise<PathOutcome[]> {
        seenAtChattr.push(...targets.map((t) => existsSync(index.entryPath(utcDay(instant), t.path))));
        return fake.setImmutable(within, targets, immutable);
      },
    });
    const [result] = await lockUnits([request], watching, { now: () => instant }, createLogger('silent'));
    expect(seenAtChattr).toEqual([true]);
    expect(result).toMatchObject({ outcome: { status: 'ok' }, indexed: true });
    expect(await index.read(utcDay(instant), unit)).toMatchObject({ state: 'locked', identity: { size: '1' } });
  });

  it('records the window by identity even when the index cap refuses the entry', async () => {
    const remote = await tempRemote();
    const index = new IndexStore(remote.indexPath, 'r', 0);
    await index.open();
    await index.countForCap();
    const { unit, instant, request } = await oneUnitRequest(remote.root, index);
    const [result] = await lockUnits([request], new FakeAttributes(), { now: () => instant }, createLogger('silent'));
    expect(result).toMatchObject({ outcome: { status: 'ok' }, indexed: false });
    expect(await index.read(utcDay(instant), unit)).toBeUndefined();
    const found = identityOf(lstatSync(unit, { bigint: true }));
    expect(await index.windows.read(found)).toEqual({ until: instant + 1, path: unit });
  });

  it('records the identity the flag helper locked, not what a walk by path finds afterwards', async () => {
    const remote = await tempRemote();
    const index = new IndexStore(remote.indexPath, 'r');
    await index.open();
    const { unit, instant, request } = await oneUnitRequest(remote.root, index);
    const fake = new FakeAttributes();
    const locked = { dev: '1', ino: '42', size: '7', mtimeNs: '1', ctimeNs: '2', birthtimeNs: '3' };
    // The helper locked inode 42; by the time it answers, something else sits at the path.
    const swapped = Object.assign(Object.create(fake) as FakeAttributes, {
      async setImmutable(within: Within, targets: readonly Target[], immutable: boolean): Promise<PathOutcome[]> {
        const outcomes = await fake.setImmutable(within, targets, immutable);
        await writeFile(unit, 'something else, swapped in after the lock');
        return outcomes.map((o) => (o.status === 'ok' ? { ...o, identity: locked } : o));
      },
    });
    const [result] = await lockUnits([request], swapped, { now: () => instant }, createLogger('silent'));
    expect(result).toMatchObject({ indexed: true, identity: locked });
    expect((await index.read(utcDay(instant), unit))?.identity).toEqual(locked);
    // Its window too, though it was written ahead by the inode the reconcile examined.
    expect(await index.windows.read(locked)).toEqual({ until: instant + 1, path: unit });
  });

  it('leaves the entry pending, and says so, when the helper returns no identity', async () => {
    const remote = await tempRemote();
    const index = new IndexStore(remote.indexPath, 'r');
    await index.open();
    const { unit, instant, request } = await oneUnitRequest(remote.root, index);
    const fake = new FakeAttributes();
    const silent = Object.assign(Object.create(fake) as FakeAttributes, {
      async setImmutable(within: Within, targets: readonly Target[], immutable: boolean): Promise<PathOutcome[]> {
        return (await fake.setImmutable(within, targets, immutable)).map(
          (o) => ({ path: o.path, status: o.status }) as PathOutcome,
        );
      },
    });
    const [result] = await lockUnits([request], silent, { now: () => instant }, createLogger('silent'));
    expect(result).toMatchObject({ indexed: false, leftPending: true });
    expect(await index.read(utcDay(instant), unit)).toMatchObject({ state: 'pending' });
  });

  it('refuses a unit whose folder became a symbolic link since its reconcile: a security warning, nothing outside locked', async () => {
    const remote = await tempRemote();
    const index = new IndexStore(remote.indexPath, 'r');
    await index.open();
    const { instant, request } = await oneUnitRequest(remote.root, index);
    const folder = path.join(remote.root, 'vm');
    await mkdir(folder);
    const unit = path.join(folder, 'unit');
    await writeFile(unit, 'x');
    // The swap: the folder moved aside, a link to a twin outside the remote in its place.
    const outside = path.join(remote.base, 'outside');
    await mkdir(outside);
    await writeFile(path.join(outside, 'unit'), 'x');
    await rename(folder, `${folder}.away`);
    await symlink(outside, folder);
    type Line = { level: number; msg: string; security?: boolean; path?: string };
    const logs: Line[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString('utf8').split('\n')) if (line !== '') logs.push(JSON.parse(line) as Line);
        done();
      },
    });

    const [result] = await lockUnits(
      [{ ...request, unit, backup: { ...request.backup, label: unit } }],
      new IoctlAdapter(),
      { now: () => instant },
      createLogger('warn', sink),
    );
    expect(result?.outcome).toMatchObject({ status: 'failed', code: 'ECONFINE' });
    expect(isImmutable(path.join(outside, 'unit'))).toBe(false);
    expect(logs).toContainEqual(
      expect.objectContaining({ security: true, path: unit, msg: expect.stringContaining(folder) as unknown }),
    );
  });
});
