// A helper run's share: paths go on its stdin, so the bytes only bound its memory and how long one run takes.
export const MAX_BATCH_BYTES = 128 * 1024;
export const MAX_BATCH_PATHS = 4096;

// Splits paths into the batches of one helper run each.
export function splitIntoBatches(
  paths: readonly string[],
  maxBytes = MAX_BATCH_BYTES,
  maxPaths = MAX_BATCH_PATHS,
): string[][] {
  const batches: string[][] = [];
  let current: string[] = [];
  let bytes = 0;
  for (const p of paths) {
    const size = Buffer.byteLength(p) + 1;
    if (current.length > 0 && (bytes + size > maxBytes || current.length >= maxPaths)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(p);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

// Helper processes run at once: +i waits for a fresh file's write-back, so several keep several disk round trips in
// flight (docs/performance.md).
export const FLAG_LANES = 8;
// Below this many paths a batch is not split further: a spawn costs more than it saves.
const MIN_SPLIT_PATHS = 64;

// Batches for FLAG_LANES processes: large lists are cut into about one batch per lane. Directories (-R) can hold
// thousands of files each, so they are spread one per batch when there are few.
export function splitForLanes(paths: readonly string[], recursive: boolean, lanes = FLAG_LANES): string[][] {
  const perLane = Math.ceil(paths.length / lanes);
  const size = Math.min(MAX_BATCH_PATHS, Math.max(recursive ? 1 : MIN_SPLIT_PATHS, perLane));
  return splitIntoBatches(paths, MAX_BATCH_BYTES, size);
}
