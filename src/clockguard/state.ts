import { mkdir, open, readFile, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { syncFolder, writeFileAtomic } from '../atomic.js';
import { errnoCode } from '../errors.js';
import { newerFormatError, versionOf } from '../index/format.js';
import type { BootSample } from './judge.js';

// Kept beside the index (root only), in two files so that no writer can undo another's decision:
// clock.json holds the last wall time seen and the baseline drift is measured from, with the boot it was taken in
// (only the daemon and --accept-clock write it; a file from before boot ids were kept has no baseline);
// clock-frozen.json exists while lifting is frozen (created once by whoever detects a jump, removed by --accept-clock).
export interface ClockState {
  lastWall?: number;
  baseline?: BootSample;
  frozen?: { since: string; reason: string };
}

const WALL = 'clock.json';
// Both files were written without a version before versions existed: they are version 1. A newer clock.json freezes lifting (it cannot be
// judged); clock-frozen.json freezes it whatever its version.
const CLOCK_VERSION = 1;
const FROZEN = 'clock-frozen.json';

export async function readClockState(indexPath: string): Promise<ClockState> {
  const state: ClockState = {};
  const wall = await readJson<{ lastWall?: unknown; baseline?: unknown }>(path.join(indexPath, WALL));
  if (wall instanceof Error) state.frozen = damaged(indexPath, WALL, wall);
  else if (wall !== undefined && versionOf(wall) !== CLOCK_VERSION)
    state.frozen = damaged(indexPath, WALL, newerFormatError(path.join(indexPath, WALL), versionOf(wall)));
  else {
    if (typeof wall?.lastWall === 'number') state.lastWall = wall.lastWall;
    if (isBootSample(wall?.baseline)) state.baseline = wall.baseline;
  }
  const frozen = await readJson<{ since: string; reason: string }>(path.join(indexPath, FROZEN));
  if (frozen instanceof Error) state.frozen = damaged(indexPath, FROZEN, frozen);
  else if (frozen !== undefined) state.frozen = { since: frozen.since, reason: frozen.reason };
  return state;
}

// Without a baseline (a clock that cannot name its boot), the next start is judged as after a reboot.
export async function recordClock(indexPath: string, lastWall: number, baseline?: BootSample): Promise<void> {
  await mkdir(indexPath, { recursive: true, mode: 0o700 });
  const content =
    baseline === undefined ? { version: CLOCK_VERSION, lastWall } : { version: CLOCK_VERSION, lastWall, baseline };
  await writeFileAtomic(path.join(indexPath, WALL), `${JSON.stringify(content)}\n`, 0o600, { durable: true });
}

// The first reason found stays: a later freeze never replaces it.
export async function freeze(indexPath: string, frozen: { since: string; reason: string }): Promise<void> {
  await mkdir(indexPath, { recursive: true, mode: 0o700 });
  let handle: FileHandle;
  try {
    handle = await open(path.join(indexPath, FROZEN), 'wx', 0o600);
  } catch (error) {
    if (errnoCode(error) === 'EEXIST') return;
    throw error;
  }
  // Durable: a power loss must not take back a freeze.
  try {
    await handle.writeFile(`${JSON.stringify({ version: CLOCK_VERSION, ...frozen })}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await syncFolder(indexPath);
}

export async function unfreeze(indexPath: string): Promise<void> {
  await unlink(path.join(indexPath, FROZEN)).catch((error: unknown) => {
    if (errnoCode(error) !== 'ENOENT') throw error;
  });
}

async function readJson<T>(file: string): Promise<T | undefined | Error> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (error) {
    return errnoCode(error) === 'ENOENT' ? undefined : (error as Error);
  }
}

function isBootSample(value: unknown): value is BootSample {
  if (typeof value !== 'object' || value === null) return false;
  const { bootId, wall, monotonic } = value as Record<string, unknown>;
  return typeof bootId === 'string' && typeof wall === 'number' && typeof monotonic === 'number';
}

// A damaged state file is a reason to stop lifting, not to forget that lifting was frozen.
function damaged(indexPath: string, name: string, error: Error): { since: string; reason: string } {
  return {
    since: new Date().toISOString(),
    reason: `the clock state ${path.join(indexPath, name)} cannot be read (${error.message})`,
  };
}
