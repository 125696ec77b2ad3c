import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { forEachLimited, mapLimited, yieldIfDue } from '../src/concurrency.js';

describe('forEachLimited', () => {
  it('runs at most limit items at once and keeps results in order', async () => {
    let running = 0;
    let peak = 0;
    const results = await mapLimited([5, 1, 4, 2, 3], 2, async (n) => {
      running++;
      peak = Math.max(peak, running);
      await sleep(n);
      running--;
      return n * 10;
    });
    expect(results).toEqual([50, 10, 40, 20, 30]);
    expect(peak).toBe(2);
  });

  it('starts nothing after a failure and throws only once the items in flight are over', async () => {
    const started: number[] = [];
    let inFlight = 0;
    const failure = forEachLimited([0, 1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
      started.push(n);
      inFlight++;
      await sleep(n === 0 ? 1 : 20);
      inFlight--;
      if (n === 0) throw new Error('spawn chattr EAGAIN');
    });
    await expect(failure).rejects.toThrow('EAGAIN');
    expect(inFlight).toBe(0);
    expect(started).toEqual([0, 1, 2]);
  });
});

describe('yieldIfDue', () => {
  it('lets a timer run during a long stretch of synchronous work', async () => {
    let fired = false;
    setTimeout(() => (fired = true), 0);
    const started = performance.now();
    // Synchronous work in 1 ms steps, as a lock round's filesystem calls are; a signal handler is such a callback.
    while (!fired && performance.now() - started < 2_000) {
      const step = performance.now();
      while (performance.now() - step < 1);
      await yieldIfDue();
    }
    expect(fired).toBe(true);
  });
});
