// Runs `work` over `items`, at most `limit` at a time (flag-helper processes, say), without starting thousands at once.
// After a failure no new item is started, and the ones in flight are waited for before the first error is thrown:
// nothing started here runs on once the caller has moved on (a lock batch must be over before a lift may begin).
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (next < items.length && !failed) {
      const index = next++;
      try {
        await work(items[index] as T, index);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  const outcomes = await Promise.allSettled(Array.from({ length: Math.min(limit, items.length) }, worker));
  const rejected = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
  if (rejected !== undefined) throw rejected.reason;
}

// Like forEachLimited, keeping each result at its item's position.
export async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  await forEachLimited(items, limit, async (item, index) => {
    results[index] = await work(item);
  });
  return results;
}

// Hot paths make synchronous fs calls (cheaper than fs/promises, docs/performance.md) after `await yieldIfDue()`,
// which lets timers, signals and watch events in at least every SLICE_MS.
const SLICE_MS = 10;
let sliceStarted = performance.now();

export async function yieldIfDue(): Promise<void> {
  if (performance.now() - sliceStarted < SLICE_MS) return;
  await new Promise<void>((resolve) => setImmediate(resolve));
  sliceStarted = performance.now();
}

// Runs each piece of work after the one before it has settled, in call order, whatever its outcome.
export class TakeTurns {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(work, work);
    this.#tail = run.catch(() => undefined);
    return run;
  }
}
