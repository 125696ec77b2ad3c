import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Target } from '../../src/attributes/adapter.js';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { isImmutable, tempFolder } from '../support/remote.js';

// Deep folders with long names, then links with long names: chattr -R prints one line of about 3.9 KB per link,
// more than the 64 MiB of output the adapter used to keep (execa then killed chattr and the whole round failed).
const LINKS = 18_000;
const DEPTH = 14;

async function floodingDirectory(parent: string): Promise<string> {
  const unit = path.join(parent, 'flood.vhd');
  let deepest = unit;
  for (let level = 0; level < DEPTH; level++) deepest = path.join(deepest, `${level}`.padEnd(250, 'd'));
  await mkdir(deepest, { recursive: true });
  await writeFile(path.join(unit, 'bat'), 'data');
  const names = Array.from({ length: LINKS }, (_, i) => `${i}`.padStart(6, '0').padEnd(255 - 40, 'l'));
  for (let start = 0; start < names.length; start += 500) {
    await Promise.all(
      names.slice(start, start + 500).map((name) => symlink('/nonexistent/dangling', path.join(deepest, name))),
    );
  }
  return unit;
}

describe('chattr output flood', () => {
  it('locks every path of the batch, and says once, when one directory holds thousands of dangling links', async () => {
    const folder = await tempFolder();
    const flood = await floodingDirectory(folder);
    const files: string[] = [];
    const directories: string[] = [];
    for (let i = 0; i < 20; i++) {
      const file = path.join(folder, `file-${i}.json`);
      await writeFile(file, '{}');
      files.push(file);
      const directory = path.join(folder, `disk-${i}.vhd`);
      await mkdir(directory);
      await writeFile(path.join(directory, 'bat'), 'data');
      directories.push(directory);
    }
    // 21 directories on 8 lanes: the flooding one shares its chattr run with two others.
    const targets: Target[] = [
      ...files.map((p) => ({ path: p, recursive: false })),
      ...[...directories.slice(0, 10), flood, ...directories.slice(10)].map((p) => ({
        path: p,
        recursive: true,
        layout: 'vhd-directory' as const,
      })),
    ];

    const outcomes = await new IoctlAdapter().setImmutable({ root: folder, realRoot: folder }, targets, true);

    expect(outcomes.filter((o) => o.status !== 'ok')).toEqual([]);
    // The flooding directory is locked all the same (its links are not XO's): said once, however many links.
    const warned = outcomes.filter((o) => o.status === 'ok' && o.warning !== undefined);
    expect(warned.map((o) => o.path)).toEqual([flood]);
    const [outcome] = warned;
    expect(outcome?.status === 'ok' && outcome.warning?.code).toBe('EFOREIGN');
    expect(outcome?.status === 'ok' && outcome.warning?.message.length).toBeLessThan(10_000);
    for (const p of [...files, ...directories, ...directories.map((d) => path.join(d, 'bat')), flood])
      expect(isImmutable(p), p).toBe(true);
    expect(isImmutable(path.join(flood, 'bat'))).toBe(true);
  }, 120_000);
});
