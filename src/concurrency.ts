// Runs `work` over `items`, at most `limit` at a time: the filesystem calls of many units overlap in libuv's thread
// pool instead of waiting for each other, without opening thousands of files at once.
export async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      await work(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

// Like forEachLimited, keeping each result at its item's position.
export async function mapLimited<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  await forEachLimited(items, limit, async (item, index) => {
    results[index] = await work(item);
  });
  return results;
}
