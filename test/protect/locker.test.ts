import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import type { PathOutcome, Target, Within } from '../../src/attributes/adapter.js';
import { IndexStore } from '../../src/index/store.js';
import { createLogger } from '../../src/log/logger.js';
import { lockUnits } from '../../src/protect/locker.js';
import { utcDay } from '../../src/remote/datetime.js';
import { examine } from '../../src/remote/read.js';
import { FakeAttributes } from '../support/fake-attributes.js';
import { oneUnitRequest } from '../support/lock-request.js';
import { tempRemote } from '../support/remote.js';

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
    const found = await examine(unit);
    expect(await index.windows.read(found!.identity)).toEqual({ until: instant + 1, path: unit });
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
});
