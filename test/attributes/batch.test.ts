import { describe, expect, it } from 'vitest';
import {
  ChattrErrors,
  MAX_BATCH_PATHS,
  parseChattrErrors,
  parseLsattr,
  splitForLanes,
  splitIntoBatches,
} from '../../src/attributes/batch.js';

describe('splitIntoBatches', () => {
  it('keeps every batch under the byte and count limits, in order, losing nothing', () => {
    const paths = Array.from({ length: 1000 }, (_, i) => `/srv/remote/xo-vm-backups/vm-${i}/20261122T061500Z.json`);
    const batches = splitIntoBatches(paths, 4096, 50);
    expect(batches.flat()).toEqual(paths);
    for (const batch of batches) {
      expect(batch.length).toBeLessThanOrEqual(50);
      expect(batch.reduce((n, p) => n + Buffer.byteLength(p) + 1, 0)).toBeLessThanOrEqual(4096);
    }
  });

  it('gives a path longer than the limit a batch of its own', () => {
    expect(splitIntoBatches(['a', 'x'.repeat(100), 'b'], 10)).toEqual([['a'], ['x'.repeat(100)], ['b']]);
  });
});

describe('parseChattrErrors', () => {
  it('pins each message on its path, and paths inside a recursive unit on the unit', () => {
    const stderr = [
      'chattr: No such file or directory while trying to stat /r/gone',
      'chattr: Operation not permitted while setting flags on /r/tree/blocks/0/1',
      '',
    ].join('\n');
    const { failures, understood } = parseChattrErrors(stderr, ['/r/ok', '/r/gone', '/r/tree']);
    expect(understood).toBe(true);
    expect(failures.map((f) => [f.path, f.code])).toEqual([
      ['/r/gone', 'ENOENT'],
      ['/r/tree', 'EPERM'],
    ]);
  });

  it('prefers the longest path when one is a prefix of another', () => {
    const { failures } = parseChattrErrors('chattr: Input/output error while setting flags on /r/a b', [
      '/r/a',
      '/r/a b',
    ]);
    expect(failures.map((f) => f.path)).toEqual(['/r/a b']);
  });

  it('says when a line names none of the batch', () => {
    expect(parseChattrErrors('chattr: something odd', ['/r/a']).understood).toBe(false);
  });
});

describe('ChattrErrors', () => {
  it('keeps one message per path, however many lines a flood prints, and a few lines it cannot place', () => {
    const errors = new ChattrErrors(['/r/ok', '/r/tree']);
    for (let i = 0; i < 20_000; i++)
      errors.add(`chattr: Operation not supported while reading flags on /r/tree/${'l'.repeat(200)}${i}`);
    for (let i = 0; i < 50; i++) errors.add(`chattr: something odd ${i}`);
    const { failures, understood, unplaced } = errors.result();
    expect(failures).toEqual([
      {
        path: '/r/tree',
        code: 'ENOTSUP',
        message: `chattr: Operation not supported while reading flags on /r/tree/${'l'.repeat(200)}0 (and 19999 more line(s) about it)`,
      },
    ]);
    expect(understood).toBe(false);
    expect(unplaced).toHaveLength(11);
    expect(unplaced.at(-1)).toBe('(and 40 more)');
  });

  it('places lines quickly whatever the batch size and however hostile the names', () => {
    const batch = Array.from({ length: 4096 }, (_, i) => `/r/vm-${i}/vdis/job/vdi/data/${i}.vhd`);
    const errors = new ChattrErrors(batch);
    const hostile = ' /'.repeat(1500);
    const started = performance.now();
    for (let i = 0; i < 20_000; i++)
      errors.add(`chattr: Operation not supported while reading flags on ${batch[i % 4096]!}/x${hostile}`);
    expect(performance.now() - started).toBeLessThan(2000);
    expect(errors.result()).toMatchObject({ understood: true });
    expect(errors.result().failures).toHaveLength(4096);
  });
});

describe('parseLsattr', () => {
  it('reads the i flag per path, names with spaces included', () => {
    const parsed = parseLsattr('----i---------e------- /r/a b\n--------------e------- /r/c\n');
    expect([...parsed]).toEqual([
      ['/r/a b', true],
      ['/r/c', false],
    ]);
  });
});

describe('splitForLanes', () => {
  const paths = (n: number) => Array.from({ length: n }, (_, i) => `/r/xo-vm-backups/vm/vdis/j/v/${i}.vhd`);

  it('keeps one backup in one spawn, cuts a burst into one batch per lane, and never passes the batch limits', () => {
    expect(splitForLanes(paths(5), false)).toHaveLength(1);
    expect(splitForLanes(paths(100), false)).toHaveLength(2);
    const burst = splitForLanes(paths(2500), false, 8);
    expect(burst).toHaveLength(8);
    expect(burst.flat()).toEqual(paths(2500));
    expect(splitForLanes(paths(80_000), false, 8).every((b) => b.length <= MAX_BATCH_PATHS)).toBe(true);
  });

  it('spreads a few directories one per batch, since each can hold thousands of files', () => {
    expect(splitForLanes(paths(4), true, 8)).toEqual(paths(4).map((p) => [p]));
    expect(splitForLanes(paths(300), true, 8)).toHaveLength(8);
  });
});
