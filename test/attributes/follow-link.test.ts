import { chown, link, mkdir, rename, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { PathOutcome } from '../../src/attributes/adapter.js';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { isImmutable, tempFolder } from '../support/remote.js';

// A link where XO makes a VHD directory's blocks/ or blocks/<n>, met by the flag helper while it locks the directory
// (planted again after the reconcile settled it): the link is frozen once the helper has locked the folder holding it,
// and what it leads to is locked with the unit, under the rules of libexec/xo-immutable-flags.pl's follow_link.
const attributes = new IoctlAdapter();
const VDI = 'xo-vm-backups/vm-1/vdis/job/vdi';
const OTHER_UID = 4321;

const walkBefore = process.env.XO_IMMUTABLE_FLAGS_WALK;
afterEach(() => {
  if (walkBefore === undefined) delete process.env.XO_IMMUTABLE_FLAGS_WALK;
  else process.env.XO_IMMUTABLE_FLAGS_WALK = walkBefore;
});

// A remote with one VHD directory (blocks/0 real) in a VDI folder; returns the paths, and a folder of blocks to link to.
async function vhdDirectory(): Promise<{
  root: string;
  vdi: string;
  vhd: string;
  blocks: (folder: string) => Promise<string>;
}> {
  const root = await tempFolder();
  const vdi = path.join(root, VDI);
  const vhd = path.join(vdi, 'data', 'x.vhd');
  await mkdir(path.join(vhd, 'blocks', '0'), { recursive: true });
  await writeFile(path.join(vhd, 'blocks', '0', '0'), 'block');
  for (const part of ['header', 'footer', 'bat']) await writeFile(path.join(vhd, part), part);
  const blocks = async (folder: string): Promise<string> => {
    await mkdir(folder, { recursive: true });
    await writeFile(path.join(folder, '0'), 'hidden block');
    return folder;
  };
  return { root, vdi, vhd, blocks };
}

async function lock(root: string, vhd: string): Promise<PathOutcome> {
  const [outcome] = await attributes.setImmutable(
    { root, realRoot: root },
    [{ path: vhd, recursive: true, layout: 'vhd-directory' }],
    true,
  );
  return outcome!;
}

function warning(outcome: PathOutcome): string {
  return outcome.status === 'ok' ? `${outcome.warning?.code ?? '-'} ${outcome.warning?.message ?? ''}` : outcome.status;
}

describe('a link where XO makes a folder of a VHD directory, met while locking it', () => {
  for (const walk of ['', '1'])
    it(`locks what a relative link at blocks/<n> leads to with the unit${walk ? ' (component walk)' : ''}`, async () => {
      process.env.XO_IMMUTABLE_FLAGS_WALK = walk;
      const { root, vdi, vhd, blocks } = await vhdDirectory();
      const hidden = await blocks(path.join(vdi, 'data', '.h'));
      await symlink('../../.h', path.join(vhd, 'blocks', '1'));

      const outcome = await lock(root, vhd);

      expect(warning(outcome)).toMatch(
        /^EFOREIGN .*blocks\/1 is a symbolic link .*data\/\.h, which it leads to, is locked/,
      );
      expect([isImmutable(hidden), isImmutable(path.join(hidden, '0'))]).toEqual([true, true]);
      expect(await readFile(path.join(vhd, 'blocks', '1', '0'), 'utf8')).toBe('hidden block');
      // Never cleared while the link is there: an admin moves the folder back first.
      const [cleared] = await attributes.setImmutable(
        { root, realRoot: root },
        [{ path: vhd, recursive: true, layout: 'vhd-directory' }],
        false,
      );
      expect(cleared).toMatchObject({ status: 'failed', code: 'EFOREIGN' });
      expect(isImmutable(path.join(hidden, '0'))).toBe(true);
    });

  it('follows a link at blocks/ itself, and the links at blocks/<n> inside what it leads to', async () => {
    const { root, vdi, vhd, blocks } = await vhdDirectory();
    const outer = path.join(vdi, '.b');
    await mkdir(outer);
    const inner = await blocks(path.join(root, '.far', 'away'));
    await symlink('../../../../../../.far/away', path.join(outer, '3'));
    await writeFile(path.join(outer, 'stray'), 'x');
    // The real blocks/ moved under the VM folder, a link left in its place.
    await rename(path.join(vhd, 'blocks'), path.join(outer, '0'));
    await symlink('../../.b', path.join(vhd, 'blocks'));

    const outcome = await lock(root, vhd);

    expect(warning(outcome)).toMatch(
      /^EFOREIGN .*x\.vhd\/blocks is a symbolic link .*\.b, which it leads to, is locked/,
    );
    for (const locked of [outer, path.join(outer, '0', '0'), path.join(outer, 'stray'), inner, path.join(inner, '0')])
      expect(isImmutable(locked), locked).toBe(true);
  });

  it('follows no absolute link, none out of the remote, to an XO folder, to one holding it, or of another owner', async () => {
    const { root, vdi, vhd, blocks } = await vhdDirectory();
    const outside = await blocks(path.join(await tempFolder('xo-immutable-outside-'), 'b'));
    const otherVm = await blocks(path.join(root, 'xo-vm-backups', 'vm-2'));
    const theirs = await blocks(path.join(vdi, '.theirs'));
    await chown(theirs, OTHER_UID, OTHER_UID);
    const cases: [string, string, RegExp][] = [
      ['1', outside, /it is absolute|it leads outside the remote/],
      ['2', path.relative(path.join(vhd, 'blocks'), outside), /it leads outside the remote/],
      ['3', '../../../../../../../vm-2', /xo-vm-backups\/vm-2, a folder of XO's own/],
      ['4', '../../..', /which holds it/],
      ['5', '../../../.theirs', new RegExp(`belongs to uid ${OTHER_UID}`)],
      ['6', '../../../../../..', /xo-vm-backups\/vm-1, a folder of XO's own|which holds it/],
    ];
    for (const [name, to] of cases) await symlink(to, path.join(vhd, 'blocks', name));

    const outcome = await lock(root, vhd);

    // Locked all the same, a link said and the others counted; nothing they lead to locked.
    expect(warning(outcome)).toMatch(
      /^EFOREIGN .*blocks\/[1-6] is a symbolic link where XO makes a folder, not followed/,
    );
    expect(warning(outcome)).toMatch(/and [56] more inside/);
    for (const untouched of [
      outside,
      otherVm,
      theirs,
      path.join(theirs, '0'),
      vdi,
      path.join(root, 'xo-vm-backups', 'vm-1'),
    ])
      expect(isImmutable(untouched), untouched).toBe(false);
    expect(isImmutable(path.join(vhd, 'blocks', '0', '0'))).toBe(true);
  });

  it('says why each link was not followed, one link a unit', async () => {
    for (const [to, why] of [
      ['../../../../../../../vm-2', /a folder of XO's own/],
      ['../../..', /which holds it/],
      ['0', /inside the unit/],
      ['../../nowhere', /it leads nowhere/],
    ] as const) {
      const { root, vhd, blocks } = await vhdDirectory();
      await blocks(path.join(root, 'xo-vm-backups', 'vm-2'));
      await symlink(to, path.join(vhd, 'blocks', '1'));
      expect(warning(await lock(root, vhd)), to).toMatch(why);
    }
  });

  // XO writes chunk-filters.json with `w`, which follows a link (its other files with `wx`): the file behind it, which
  // XO reads before any block (a garbled one and the disk cannot be read), is locked with the unit.
  it("locks the file a link at chunk-filters.json leads to, never XO's cache nor a file with a second name", async () => {
    const { root, vdi, vhd } = await vhdDirectory();
    const filters = path.join(vdi, 'data', '.c');
    await writeFile(filters, '["brotli"]');
    await symlink('../.c', path.join(vhd, 'chunk-filters.json'));
    const outcome = await lock(root, vhd);
    expect(warning(outcome)).toMatch(
      /chunk-filters\.json is a symbolic link where XO writes a file: .*data\/\.c, which/,
    );
    expect(isImmutable(filters)).toBe(true);
    expect(await readFile(path.join(vhd, 'chunk-filters.json'), 'utf8')).toBe('["brotli"]');

    for (const [make, why] of [
      [
        async (vm: string) => writeFile(path.join(vm, 'cache.json.gz'), 'x').then(() => 'cache.json.gz'),
        /a file XO writes/,
      ],
      [
        async (vm: string) => {
          await writeFile(path.join(vm, '.two'), 'x');
          await link(path.join(vm, '.two'), path.join(vm, '.other'));
          return '.two';
        },
        /has 2 hard links/,
      ],
      [async (vm: string) => mkdir(path.join(vm, '.f')).then(() => '.f'), /not a regular file/],
    ] as const) {
      const next = await vhdDirectory();
      const vm = path.join(next.root, 'xo-vm-backups', 'vm-1');
      const name = await make(vm);
      await symlink(`../../../../../${name}`, path.join(next.vhd, 'chunk-filters.json'));
      expect(warning(await lock(next.root, next.vhd)), name).toMatch(why);
      expect(isImmutable(path.join(vm, name)), name).toBe(false);
    }
  });
});
