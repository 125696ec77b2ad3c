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

// Lines kept that name no path of the batch: enough to log what chattr said, not a flood.
const MAX_UNPLACED_LINES = 10;

// chattr, run with LC_ALL=C, says "chattr: <reason> while <doing> <path>" per failed path (and, under -R, per entry
// inside it) and goes on. Lines are pinned on their path as they arrive and only the first per path is kept, so a
// flood (thousands of bad entries inside one directory) costs memory per path of the batch, not per line.
export class ChattrErrors {
  readonly #paths: ReadonlySet<string>;
  readonly #longest: number;
  readonly #failures = new Map<string, ChattrFailure & { more: number }>();
  readonly #unplaced: string[] = [];
  #unplacedCount = 0;

  constructor(batch: readonly string[]) {
    this.#paths = new Set(batch);
    this.#longest = batch.reduce((longest, p) => Math.max(longest, p.length), 0);
  }

  add(line: string): void {
    if (line.trim() === '') return;
    const owner = ownerOf(line, this.#paths, this.#longest);
    if (owner === undefined) {
      this.#unplacedCount++;
      if (this.#unplaced.length < MAX_UNPLACED_LINES) this.#unplaced.push(line);
      return;
    }
    const known = this.#failures.get(owner);
    if (known !== undefined) known.more++;
    else this.#failures.set(owner, { path: owner, code: classifyChattrMessage(line), message: line, more: 0 });
  }

  // The failures pinned on a path of the batch, each with its first message, and whether every line was understood.
  result(): { failures: ChattrFailure[]; understood: boolean; unplaced: string[] } {
    const failures = [...this.#failures.values()].map(({ path, code, message, more }) => ({
      path,
      code,
      message: more === 0 ? message : `${message} (and ${more} more line(s) about it)`,
    }));
    const unplaced = [...this.#unplaced];
    if (this.#unplacedCount > unplaced.length) unplaced.push(`(and ${this.#unplacedCount - unplaced.length} more)`);
    return { failures, understood: this.#unplacedCount === 0, unplaced };
  }
}

// The same, for a whole stderr already read.
export function parseChattrErrors(
  stderr: string,
  batch: readonly string[],
): { failures: ChattrFailure[]; understood: boolean } {
  const errors = new ChattrErrors(batch);
  for (const line of stderr.split('\n')) errors.add(line);
  const { failures, understood } = errors.result();
  return { failures, understood };
}

// chattr's own words come before the path: a path is looked for after the first few spaces only, so a hostile name
// full of spaces and slashes costs no more than any other. A line not placed makes the batch's paths run alone.
const MAX_SPACES_TRIED = 32;

// The path of the batch the line is about: after the first space where the rest of the line is that path, or starts
// with it as a folder ("<path>/..."); the longest there. Looked up by candidate, so the cost does not grow with the
// batch.
function ownerOf(line: string, paths: ReadonlySet<string>, longest: number): string | undefined {
  let space = line.indexOf(' ');
  for (let tried = 0; space !== -1 && tried < MAX_SPACES_TRIED; tried++, space = line.indexOf(' ', space + 1)) {
    const rest = line.slice(space + 1);
    if (rest.length <= longest && paths.has(rest)) return rest;
    let owner: string | undefined;
    for (let slash = rest.indexOf('/'); slash !== -1 && slash <= longest; slash = rest.indexOf('/', slash + 1)) {
      const folder = rest.slice(0, slash);
      if (paths.has(folder)) owner = folder;
    }
    if (owner !== undefined) return owner;
  }
  return undefined;
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
