import { readFileSync, writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.js';
import { LOCK_FILE, lockHolder, takeInstanceLock } from '../../src/lock/instance-lock.js';
import { tempFolder } from '../support/remote.js';

async function taken(indexPath: string, command: string) {
  const attempt = await takeInstanceLock(indexPath, command);
  if (!('lock' in attempt)) throw new Error(`the lock should be free, held by ${JSON.stringify(attempt.holder)}`);
  return attempt.lock;
}

// Two opens of the lock file are two open file descriptions: flock(2) makes them exclude each other even within
// one process, as two daemons in two processes do.
describe('the instance lock', () => {
  it('records its holder, refuses a second taker naming it, and is free with an empty record once released', async () => {
    const indexPath = path.join(await tempFolder(), 'index');
    const lock = await taken(indexPath, 'protect');
    const file = path.join(indexPath, LOCK_FILE);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ pid: process.pid, command: 'protect' });

    const second = await takeInstanceLock(indexPath, 'lift');
    expect(second).toEqual({ holder: expect.objectContaining({ pid: process.pid, command: 'protect' }) as unknown });
    expect(await lockHolder(indexPath)).toMatchObject({ command: 'protect' });

    lock.release();
    lock.release();
    expect(readFileSync(file, 'utf8')).toBe('');
    expect(await lockHolder(indexPath)).toBe('free');
    // The probe left no record of itself.
    expect(readFileSync(file, 'utf8')).toBe('');
    (await taken(indexPath, 'lift')).release();
  });

  it('calls a holder unknown when its record names no live process', async () => {
    const indexPath = path.join(await tempFolder(), 'index');
    const lock = await taken(indexPath, 'protect');
    // What a record left by a crash would look like, were the lock still held.
    writeFileSync(path.join(indexPath, LOCK_FILE), JSON.stringify({ pid: 2 ** 22 + 1, command: 'protect', since: '' }));
    expect(await takeInstanceLock(indexPath, 'lift')).toEqual({ holder: undefined });
    lock.release();
  });

  it('creates nothing where indexPath cannot be made, and says why', async () => {
    const base = await tempFolder();
    writeFileSync(path.join(base, 'file'), '');
    const indexPath = path.join(base, 'file', 'index');
    const error = await takeInstanceLock(indexPath, 'lift').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('INDEX_UNUSABLE');
    expect((error as AppError).message).toContain('ENOTDIR');
    expect(await readdir(base)).toEqual(['file']);
  });
});
