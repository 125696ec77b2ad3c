import { describe, expect, it } from 'vitest';
import type { RemoteContext } from '../../src/context/remote-context.js';
import { foldersFailedBy } from '../../src/protect/batch.js';
import type { LeafFolder, LockRequest } from '../../src/protect/context.js';
import { HELD, type LockResult } from '../../src/protect/locker.js';

const remote = { id: 'r', root: '/r' } as unknown as RemoteContext;
const folder = (name: string): LeafFolder => ({ remote, kind: 'vm', path: `/r/xo-vm-backups/${name}` });
const request = (unit: string): LockRequest => ({
  remote,
  kind: 'vm',
  unit,
  recursive: false,
  backup: { label: 'x.json', datetime: 'x', instant: 0, completedAt: 0 },
});
const result = (unit: string, outcome: LockResult['outcome']): LockResult => ({
  request: request(unit),
  outcome,
  indexed: outcome.status === 'ok',
});

describe("a lock batch's results", () => {
  it('send back the folders of failed and vanished units, with the failed units as gaps, and leave held ones', () => {
    const [a, b, c] = [folder('a'), folder('b'), folder('c')];
    const folderOf = new Map([
      ['/a/1', a],
      ['/a/2', a],
      ['/b/1', b],
      ['/c/1', c],
    ]);
    const failed = foldersFailedBy(folderOf, [
      result('/a/1', { path: '/a/1', status: 'ok' }),
      result('/a/2', { path: '/a/2', status: 'failed', code: 'EIO', message: 'Input/output error' }),
      result('/b/1', { path: '/b/1', status: 'vanished' }),
      result('/c/1', { path: '/c/1', status: 'failed', code: HELD, message: 'held' }),
    ]);
    expect([...failed.values()]).toEqual([
      { folder: a, unlocked: ['/a/2'] },
      { folder: b, unlocked: [] },
    ]);
  });
});
