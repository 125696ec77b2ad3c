import { describe, expect, it } from 'vitest';
import { MAX_BATCH_PATHS, splitForLanes, splitIntoBatches } from '../../src/attributes/batch.js';

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
