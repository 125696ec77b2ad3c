import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { PathOutcome, Target, Within } from '../../src/attributes/adapter.js';
import { IndexStore } from '../../src/index/store.js';
import { createLogger } from '../../src/log/logger.js';
import type { LockRequest } from '../../src/protect/context.js';
import { lockUnits } from '../../src/protect/locker.js';
import type { RemoteContext } from '../../src/context/remote-context.js';
import { utcDay } from '../../src/remote/datetime.js';
import { FakeAttributes } from '../support/fake-attributes.js';
import { tempRemote } from '../support/remote.js';

describe('lockUnits', () => {
  it('writes each entry before chattr runs, and completes it with the identity after', async () => {
    const remote = await tempRemote();
    const index = new IndexStore(remote.indexPath, 'r');
    await index.open();
    const context: RemoteContext = {
      id: 'r',
      root: remote.root,
      realRoot: remote.root,
      durationMs: 1,
      index,
      encrypted: false,
    };
    const unit = path.join(remote.root, 'unit');
    await writeFile(unit, 'x');
    const instant = Date.UTC(2026, 10, 22, 6);
    const request: LockRequest = {
      remote: context,
      kind: 'vm',
      unit,
      recursive: false,
      backup: { label: unit, datetime: '20261122T060000Z', instant, completedAt: instant },
    };
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
});
