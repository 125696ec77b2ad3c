// Linux refuses an exec whose arguments pass ARG_MAX (2 MiB here); staying far below leaves room for the environment.
export const MAX_BATCH_BYTES = 128 * 1024;
export const MAX_BATCH_PATHS = 4096;

// Splits paths into argument lists that each fit one chattr spawn.
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

// chattr processes run at once: +i waits for a fresh file's write-back, so several keep several disk round trips in
// flight (docs/performance.md).
export const CHATTR_LANES = 8;
// Below this many paths a batch is not split further: a spawn costs more than it saves.
const MIN_SPLIT_PATHS = 64;

// Batches for CHATTR_LANES processes: large lists are cut into about one batch per lane. Directories (-R) can hold
// thousands of files each, so they are spread one per batch when there are few.
export function splitForLanes(paths: readonly string[], recursive: boolean, lanes = CHATTR_LANES): string[][] {
  const perLane = Math.ceil(paths.length / lanes);
  const size = Math.min(MAX_BATCH_PATHS, Math.max(recursive ? 1 : MIN_SPLIT_PATHS, perLane));
  return splitIntoBatches(paths, MAX_BATCH_BYTES, size);
}

export interface ChattrFailure {
  path: string;
  code: string;
  message: string;
}

// chattr, run with LC_ALL=C, says "chattr: <reason> while <doing> <path>" per failed path and goes on.
// The failures it can pin on a path of the batch (or inside one, under -R), and whether every line was understood.
export function parseChattrErrors(
  stderr: string,
  batch: readonly string[],
): { failures: ChattrFailure[]; understood: boolean } {
  const failures: ChattrFailure[] = [];
  let understood = true;
  const sorted = [...batch].sort((a, b) => b.length - a.length);
  for (const line of stderr.split('\n')) {
    if (line.trim() === '') continue;
    const owner = sorted.find((p) => line.endsWith(` ${p}`) || line.includes(` ${p}/`));
    if (owner === undefined) {
      understood = false;
      continue;
    }
    failures.push({ path: owner, code: classifyChattrMessage(line), message: line });
  }
  return { failures, understood };
}

export function classifyChattrMessage(line: string): string {
  if (line.includes('No such file or directory')) return 'ENOENT';
  if (line.includes('Operation not permitted')) return 'EPERM';
  if (line.includes('Operation not supported') || line.includes('Inappropriate ioctl')) return 'ENOTSUP';
  if (line.includes('Read-only file system')) return 'EROFS';
  if (line.includes('Input/output error')) return 'EIO';
  return 'EUNKNOWN';
}

// lsattr -d prints "<flags> <path>" a line; the immutable flag is the letter i.
export function parseLsattr(stdout: string): Map<string, boolean> {
  const result = new Map<string, boolean>();
  for (const line of stdout.split('\n')) {
    const space = line.indexOf(' ');
    if (space <= 0) continue;
    result.set(line.slice(space + 1), line.slice(0, space).includes('i'));
  }
  return result;
}
