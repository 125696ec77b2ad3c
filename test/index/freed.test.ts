import { existsSync, readdirSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FreedFiles } from '../../src/index/freed.js';
import { tempFolder } from '../support/remote.js';

describe('forgotten index files', () => {
  it('are moved out of their folder at once, then unlinked a turn at a time until told to stop', async () => {
    const indexPath = await tempFolder();
    const freed = new FreedFiles(indexPath, 'r');
    const files = Array.from({ length: 40 }, (_, i) => path.join(indexPath, `entry-${i}`));
    for (const file of files) await writeFile(file, 'an entry');
    for (const file of files) expect(await freed.forget(file)).toBe(true);
    expect(files.filter((file) => existsSync(file))).toEqual([]);
    expect(readdirSync(freed.folder)).toHaveLength(40);
    // A file gone already is said so, and nothing is moved.
    expect(await freed.forget(files[0]!)).toBe(false);

    let turns = 0;
    const unlinked = await freed.reclaim(
      async (work) => {
        turns++;
        await work();
      },
      () => turns === 2,
    );
    expect(unlinked).toBe(32);
    expect(readdirSync(freed.folder)).toHaveLength(8);
    expect(
      await freed.reclaim(
        (work) => work(),
        () => false,
      ),
    ).toBe(8);
    expect(readdirSync(freed.folder)).toEqual([]);
  });

  it('makes its folder again when it was removed meanwhile, instead of taking the file for gone', async () => {
    const indexPath = await tempFolder();
    const freed = new FreedFiles(indexPath, 'r');
    await writeFile(path.join(indexPath, 'a'), 'a');
    await writeFile(path.join(indexPath, 'b'), 'b');
    expect(await freed.forget(path.join(indexPath, 'a'))).toBe(true);
    await rm(freed.folder, { recursive: true });
    expect(await freed.forget(path.join(indexPath, 'b'))).toBe(true);
    expect(existsSync(path.join(indexPath, 'b'))).toBe(false);
    expect(readdirSync(freed.folder)).toHaveLength(1);
  });
  it('moves a whole folder at once, then unlinks what it holds a turn at a time, then the folder', async () => {
    const indexPath = await tempFolder();
    const freed = new FreedFiles(indexPath, 'r');
    const bucket = path.join(indexPath, 'r', '2026-11-20');
    await mkdir(bucket, { recursive: true });
    for (let i = 0; i < 40; i++) await writeFile(path.join(bucket, `entry-${i}`), 'an entry');
    await writeFile(path.join(indexPath, 'loose'), 'a window record');
    expect(await freed.forget(path.join(indexPath, 'loose'))).toBe(true);
    const moved = freed.move(bucket);
    if (typeof moved !== 'string') throw new Error(`not moved: ${String(moved)}`);
    expect(path.dirname(moved)).toBe(freed.folder);
    expect(readdirSync(moved)).toHaveLength(40);
    expect(existsSync(bucket)).toBe(false);
    expect(freed.move(bucket)).toBeUndefined();

    // Stopped part-way (as a daemon stopping, or a crash, leaves it): the next reclaim goes on from there.
    let turns = 0;
    const first = await freed.reclaim(
      async (work) => {
        turns++;
        await work();
      },
      () => turns === 2,
    );
    expect(first).toBe(1 + 16);
    expect(readdirSync(moved)).toHaveLength(24);
    expect(
      await freed.reclaim(
        (work) => work(),
        () => false,
      ),
    ).toBe(24);
    expect(readdirSync(freed.folder)).toEqual([]);
    expect(await freed.removeIfEmpty()).toBe(true);
  });
});
