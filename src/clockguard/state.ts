import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { errnoCode } from '../errors.js';

// Kept beside the index (root only): the last wall time seen, and why lifting is frozen, if it is.
export interface ClockState {
  lastWall?: number;
  frozen?: { since: string; reason: string };
}

export function clockStatePath(indexPath: string): string {
  return path.join(indexPath, 'clock.json');
}

export async function readClockState(indexPath: string): Promise<ClockState> {
  try {
    return JSON.parse(await readFile(clockStatePath(indexPath), 'utf8')) as ClockState;
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return {};
    // A damaged state file is a reason to stop lifting, not to forget that lifting was frozen.
    return { frozen: { since: new Date().toISOString(), reason: `the clock state ${clockStatePath(indexPath)} cannot be read: ${(error as Error).message}` } };
  }
}

export async function writeClockState(indexPath: string, state: ClockState): Promise<void> {
  await mkdir(indexPath, { recursive: true, mode: 0o700 });
  const target = clockStatePath(indexPath);
  const temporary = `${target}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(temporary, `${JSON.stringify(state)}\n`, { mode: 0o600 });
    await rename(temporary, target);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
}
