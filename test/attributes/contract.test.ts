import { appendFile, mkdir, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AttributesAdapter } from '../../src/attributes/adapter.js';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { FakeAttributes } from '../support/fake-attributes.js';
import { canMake, mountFilesystem, type FilesystemType } from '../support/filesystems.js';
import { isImmutable, tempFolder } from '../support/remote.js';

// One contract, every backend: the fake that unit tests rely on must behave like chattr on each real filesystem.
const onLoop = (type: FilesystemType): [string, () => AttributesAdapter, boolean, () => Promise<string>] => [
  `chattr on loop-mounted ${type}`,
  () => new IoctlAdapter(),
  true,
  () => mountFilesystem(type),
];
const backends: [string, () => AttributesAdapter, boolean, () => Promise<string>][] = [
  ['fake', () => new FakeAttributes(), false, () => tempFolder()],
  ['chattr on /tmp (ext4)', () => new IoctlAdapter(), true, () => tempFolder()],
  ...(['ext4', 'xfs', 'btrfs', 'tmpfs'] as const)
    .filter((type) => canMake(type) || process.env.CI !== undefined)
    .map(onLoop),
];

describe.each(backends)('attributes adapter: %s', (_name, make, real, tempFolder) => {
  it('locks and unlocks many paths in one call, with one outcome per path', async () => {
    const folder = await tempFolder();
    const within = { root: folder, realRoot: folder };
    const files = await Promise.all(
      ['a', 'b c', '-starts-with-dash', "quote'd", 'ünïcödé', 'x'.repeat(255)].map(async (name) => {
        const file = path.join(folder, name);
        await writeFile(file, name);
        return file;
      }),
    );
    const adapter = make();
    const locked = await adapter.setImmutable(
      within,
      files.map((p) => ({ path: p, recursive: false })),
      true,
    );
    expect(locked.map((o) => o.status)).toEqual(files.map(() => 'ok'));
    expect([...(await adapter.isImmutable(within, files)).values()]).toEqual(files.map(() => true));
    if (real) {
      for (const file of files) await expect(appendFile(file, 'x')).rejects.toMatchObject({ code: 'EPERM' });
    }
    const unlocked = await adapter.setImmutable(
      within,
      files.map((p) => ({ path: p, recursive: false })),
      false,
    );
    expect(unlocked.map((o) => o.status)).toEqual(files.map(() => 'ok'));
    expect([...(await adapter.isImmutable(within, files)).values()]).toEqual(files.map(() => false));
  });

  it('reports a vanished path as vanished, not as an error, and still locks the rest', async () => {
    const folder = await tempFolder();
    const within = { root: folder, realRoot: folder };
    const present = path.join(folder, 'present');
    await writeFile(present, 'x');
    const gone = path.join(folder, 'gone');
    const adapter = make();
    const outcomes = await adapter.setImmutable(
      within,
      [
        { path: gone, recursive: false },
        { path: present, recursive: false },
      ],
      true,
    );
    expect(outcomes).toEqual([
      { path: gone, status: 'vanished' },
      { path: present, status: 'ok' },
    ]);
    expect((await adapter.isImmutable(within, [present, gone])).get(gone)).toBeUndefined();
    expect((await adapter.isImmutable(within, [present])).get(present)).toBe(true);
    await adapter.setImmutable(within, [{ path: present, recursive: false }], false);
  });

  it.runIf(real)('locks a directory with everything in it when recursive', async () => {
    const folder = await tempFolder();
    const within = { root: folder, realRoot: folder };
    const tree = path.join(folder, 'data', '20261122T061500Z.vhd');
    await mkdir(path.join(tree, 'blocks', '0'), { recursive: true });
    await writeFile(path.join(tree, 'blocks', '0', '1'), 'block');
    const adapter = make();
    expect((await adapter.setImmutable(within, [{ path: tree, recursive: true }], true))[0]?.status).toBe('ok');
    expect(isImmutable(tree)).toBe(true);
    expect(isImmutable(path.join(tree, 'blocks', '0', '1'))).toBe(true);
    await expect(unlink(path.join(tree, 'blocks', '0', '1'))).rejects.toMatchObject({ code: 'EPERM' });
    await adapter.setImmutable(within, [{ path: tree, recursive: true }], false);
    expect(isImmutable(path.join(tree, 'blocks', '0', '1'))).toBe(false);
  });
});
