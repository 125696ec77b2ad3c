import { appendFile, mkdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AttributesAdapter } from '../../src/attributes/adapter.js';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { FakeAttributes } from '../support/fake-attributes.js';
import { canMake, mountFilesystem, type FilesystemType } from '../support/filesystems.js';
import { isImmutable, tempFolder } from '../support/remote.js';

const WALK = 'chattr on /tmp (ext4), the helper walking each component (no openat2)';

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
  // The helper's component walk, for kernels without openat2 (before 5.6).
  [WALK, () => new IoctlAdapter(), true, () => tempFolder()],
  ...(['ext4', 'xfs', 'btrfs', 'tmpfs'] as const)
    .filter((type) => canMake(type) || process.env.CI !== undefined)
    .map(onLoop),
];

describe.each(backends)('attributes adapter: %s', (name, make, real, tempFolder) => {
  const walk = process.env.XO_IMMUTABLE_FLAGS_WALK;
  beforeEach(() => {
    if (name === WALK) process.env.XO_IMMUTABLE_FLAGS_WALK = '1';
  });
  afterEach(() => {
    if (walk === undefined) delete process.env.XO_IMMUTABLE_FLAGS_WALK;
    else process.env.XO_IMMUTABLE_FLAGS_WALK = walk;
  });

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

  it('a check answers as a clear would, and changes nothing', async () => {
    const folder = await tempFolder();
    const within = { root: folder, realRoot: folder };
    const [file, gone] = [path.join(folder, 'locked'), path.join(folder, 'gone')];
    await writeFile(file, 'x');
    const adapter = make();
    try {
      await adapter.setImmutable(within, [{ path: file, recursive: false }], true);
      const checked = await adapter.checkClear(within, [
        { path: file, recursive: false },
        { path: gone, recursive: false },
      ]);
      expect(checked.map((o) => [o.path, o.status])).toEqual([
        [file, 'ok'],
        [gone, 'vanished'],
      ]);
      expect((await adapter.isImmutable(within, [file])).get(file)).toBe(true);
    } finally {
      await adapter.setImmutable(within, [{ path: file, recursive: false }], false);
    }
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
    expect(outcomes.map(({ path: p, status }) => ({ path: p, status }))).toEqual([
      { path: gone, status: 'vanished' },
      { path: present, status: 'ok' },
    ]);
    // The identity of what was locked, read after the change: what a stat of the path gives now.
    const after = await stat(present, { bigint: true });
    expect(outcomes[1]?.status === 'ok' && outcomes[1].identity).toEqual({
      dev: `${after.dev}`,
      ino: `${after.ino}`,
      size: `${after.size}`,
      mtimeNs: `${after.mtimeNs}`,
      ctimeNs: `${after.ctimeNs}`,
      birthtimeNs: `${after.birthtimeNs}`,
    });
    expect((await adapter.isImmutable(within, [present, gone])).get(gone)).toBeUndefined();
    expect((await adapter.isImmutable(within, [present])).get(present)).toBe(true);
    await adapter.setImmutable(within, [{ path: present, recursive: false }], false);
  });

  it.runIf(real)('locks a directory with everything in it when recursive', async () => {
    const folder = await tempFolder();
    const within = { root: folder, realRoot: folder };
    const tree = await vhdDirectory(path.join(folder, 'data', '20261122T061500Z.vhd'));
    const adapter = make();
    const unit = { path: tree, recursive: true, layout: 'vhd-directory' as const };
    expect((await adapter.setImmutable(within, [unit], true))[0]?.status).toBe('ok');
    expect(isImmutable(tree)).toBe(true);
    expect(isImmutable(path.join(tree, 'blocks', '0', '1'))).toBe(true);
    await expect(unlink(path.join(tree, 'blocks', '0', '1'))).rejects.toMatchObject({ code: 'EPERM' });
    await adapter.setImmutable(within, [unit], false);
    expect(isImmutable(path.join(tree, 'blocks', '0', '1'))).toBe(false);
    expect(isImmutable(tree)).toBe(false);
  });

  it.runIf(real)(
    'locks a directory unit holding what XO does not write there, says so, and never clears it',
    async () => {
      const folder = await tempFolder();
      const within = { root: folder, realRoot: folder };
      const adapter = make();
      // A real VM folder moved into a look-alike VHD directory, its backup already locked; a folder in a date folder.
      const vm = path.join(folder, 'vm');
      await mkdir(vm);
      await writeFile(path.join(vm, '20261122T061500Z.json'), '{}');
      await adapter.setImmutable(within, [{ path: path.join(vm, '20261122T061500Z.json'), recursive: false }], true);
      const junk = await vhdDirectory(path.join(folder, 'junk.vhd'));
      await rename(vm, path.join(junk, 'blocks', '0', 'vm'));
      const date = path.join(folder, '20261122T061500Z');
      await mkdir(path.join(date, 'sub'), { recursive: true });
      await writeFile(path.join(date, 'metadata.json'), '{}');
      const sound = path.join(folder, '20261123T061500Z');
      await mkdir(sound);
      await writeFile(path.join(sound, 'metadata.json'), '{}');
      await writeFile(path.join(sound, 'data.json'), '{}');

      const outcomes = await adapter.setImmutable(
        within,
        [
          { path: junk, recursive: true, layout: 'vhd-directory' },
          { path: date, recursive: true, layout: 'date-folder' },
          { path: sound, recursive: true, layout: 'date-folder' },
        ],
        true,
      );

      // Locked all the same (when in doubt, protect), and said.
      expect(outcomes.map((o) => (o.status === 'ok' ? (o.warning?.code ?? 'ok') : o.status))).toEqual([
        'EFOREIGN',
        'EFOREIGN',
        'ok',
      ]);
      expect(outcomes[0]?.status === 'ok' && outcomes[0].warning?.message).toContain('blocks/0/vm');
      for (const locked of [junk, path.join(junk, 'blocks'), path.join(junk, 'header'), date, path.join(date, 'sub')])
        expect(isImmutable(locked), locked).toBe(true);
      expect(isImmutable(path.join(sound, 'data.json'))).toBe(true);
      // Unlocking descends into nothing outside the layout either: the moved-in backup stays locked.
      const moved = path.join(junk, 'blocks', '0', 'vm', '20261122T061500Z.json');
      expect(isImmutable(moved)).toBe(true);
      const [cleared] = await adapter.setImmutable(
        within,
        [{ path: junk, recursive: true, layout: 'vhd-directory' }],
        false,
      );
      expect(cleared).toMatchObject({ status: 'failed', code: 'EFOREIGN' });
      expect(isImmutable(moved)).toBe(true);
      await adapter.setImmutable(within, [{ path: sound, recursive: true, layout: 'date-folder' }], false);
    },
  );

  it.runIf(real)('refuses a file checked as a directory, and a directory checked as a file', async () => {
    const folder = await tempFolder();
    const within = { root: folder, realRoot: folder };
    const file = path.join(folder, 'a.vhd');
    await writeFile(file, 'x');
    const directory = await vhdDirectory(path.join(folder, 'b.vhd'));
    const outcomes = await make().setImmutable(
      within,
      [
        { path: file, recursive: true, layout: 'vhd-directory' },
        { path: directory, recursive: false },
      ],
      true,
    );
    expect(outcomes.map((o) => o.status === 'failed' && o.code)).toEqual(['EKIND', 'EKIND']);
    expect(isImmutable(file)).toBe(false);
    expect(isImmutable(directory)).toBe(false);
  });
});

// What vhd-lib's VhdDirectory writes: header, footer, bat, chunk-filters.json and blocks/<n>/<m>.
async function vhdDirectory(directory: string): Promise<string> {
  await mkdir(path.join(directory, 'blocks', '0'), { recursive: true });
  for (const name of ['header', 'footer', 'bat', 'chunk-filters.json'])
    await writeFile(path.join(directory, name), 'x');
  await writeFile(path.join(directory, 'blocks', '0', '1'), 'block');
  return directory;
}
