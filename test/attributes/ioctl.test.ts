import { execFileSync, spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { link, mkdir, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { PathOutcome } from '../../src/attributes/adapter.js';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { AppError } from '../../src/errors.js';
import { isImmutable, stopBeforeCleanup, tempFolder } from '../support/remote.js';

const attributes = new IoctlAdapter();
const HELPER = path.resolve('libexec/xo-immutable-flags.pl');

// One request of records as they come, to the helper run directly (`perl` is `perl <HELPER>` unless told), with perl's
// warnings on.
function request(op: string, root: string, records: readonly string[]): string {
  return `${op} ${records.length}\0${root}\0${root}\0${records.map((r) => `${r}\0`).join('')}`;
}

function runHelper(
  input: string,
  perl: string[] = [HELPER],
  env: Record<string, string> = {},
): SpawnSyncReturns<string> {
  const out = spawnSync('perl', perl, {
    input,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', XO_IMMUTABLE_FLAGS_WARNINGS: '1', ...env },
  });
  expect(out.stderr).toBe('');
  // Warnings go out with the answer.
  expect(out.stdout).not.toMatch(/^warn\t/m);
  return out;
}
const originalPath = process.env.PATH;
const walkBefore = process.env.XO_IMMUTABLE_FLAGS_WALK;
afterEach(() => {
  process.env.PATH = originalPath;
  if (walkBefore === undefined) delete process.env.XO_IMMUTABLE_FLAGS_WALK;
  else process.env.XO_IMMUTABLE_FLAGS_WALK = walkBefore;
});

// A folder standing for a remote, and one outside it whose flags must never change.
async function remoteAndOutside(): Promise<{ root: string; outside: string; victim: string }> {
  const root = await tempFolder();
  const outside = await tempFolder('xo-immutable-outside-');
  const victim = path.join(outside, 'victim');
  await writeFile(victim, 'precious');
  return { root, outside, victim };
}

describe('the flag helper', () => {
  it('refuses a link, a FIFO and a device, locks a file with a second hard link and says so, and the rest', async () => {
    const { root, victim } = await remoteAndOutside();
    const file = (name: string) => path.join(root, name);
    await writeFile(file('good'), 'x');
    await symlink(victim, file('link.json'));
    execFileSync('mkfifo', [file('fifo.json')]);
    execFileSync('mknod', [file('null.json'), 'c', '1', '3']);
    await writeFile(file('linked'), 'x');
    await link(file('linked'), file('second-name.json'));
    const names = ['link.json', 'fifo.json', 'null.json', 'second-name.json', 'good'];

    const outcomes = await attributes.setImmutable(
      { root, realRoot: root },
      names.map((name) => ({ path: file(name), recursive: false })),
      true,
    );

    const codeOf = (o: PathOutcome): string =>
      o.status === 'failed' ? o.code : o.status === 'ok' ? (o.warning?.code ?? '') : '';
    expect(outcomes.map((o) => [path.basename(o.path), o.status, codeOf(o)])).toEqual([
      ['link.json', 'failed', 'ENOTSUP'],
      ['fifo.json', 'failed', 'ENOTSUP'],
      ['null.json', 'failed', 'ENOTSUP'],
      // Locked all the same, and said: left unlocked, the backup it belongs to could be deleted.
      ['second-name.json', 'ok', 'ELINKS'],
      ['good', 'ok', ''],
    ]);
    expect(isImmutable(file('good'))).toBe(true);
    expect(isImmutable(victim)).toBe(false);
    expect(isImmutable(file('linked'))).toBe(true);
    const read = await attributes.isImmutable({ root, realRoot: root }, [file('good'), file('link.json')]);
    expect([...read.values()]).toEqual([true, undefined]);
    // Never cleared while it has a second name: that is for an admin to look at.
    const [cleared] = await attributes.setImmutable(
      { root, realRoot: root },
      [{ path: file('second-name.json'), recursive: false }],
      false,
    );
    expect(cleared).toMatchObject({ status: 'failed', code: 'ELINKS' });
    expect(isImmutable(file('linked'))).toBe(true);
  });

  it('follows no symlinked folder on the way, whatever it points to', async () => {
    const { root, outside, victim } = await remoteAndOutside();
    await mkdir(path.join(root, 'vm'));
    await symlink(outside, path.join(root, 'vm', 'vdis'));
    const [outcome] = await attributes.setImmutable(
      { root, realRoot: root },
      [{ path: path.join(root, 'vm', 'vdis', 'victim'), recursive: false }],
      true,
    );
    expect(outcome).toMatchObject({ status: 'failed', code: 'ECONFINE' });
    expect(isImmutable(victim)).toBe(false);
    expect(
      (await attributes.isImmutable({ root, realRoot: root }, [path.join(root, 'vm', 'vdis', 'victim')])).get(
        path.join(root, 'vm', 'vdis', 'victim'),
      ),
    ).toBeUndefined();
  });

  it('locks a VHD directory holding a dangling link, a link out or a FIFO all the same, and says so', async () => {
    const { root, outside } = await remoteAndOutside();
    const data = path.join(root, 'data');
    const broken = path.join(data, 'broken.vhd');
    await mkdir(path.join(broken, 'blocks', '0'), { recursive: true });
    await writeFile(path.join(broken, 'blocks', '0', '0'), 'block');
    await symlink('/nonexistent/dangling', path.join(broken, 'blocks', '0', '1'));
    await symlink(outside, path.join(broken, 'header'));
    execFileSync('mkfifo', [path.join(broken, 'footer')]);
    const sound = path.join(data, 'sound.vhd');
    await mkdir(path.join(sound, 'blocks', '0'), { recursive: true });
    await writeFile(path.join(sound, 'blocks', '0', '0'), 'block');
    await writeFile(path.join(root, 'a.json'), '{}');

    const outcomes = await attributes.setImmutable(
      { root, realRoot: root },
      [
        { path: broken, recursive: true, layout: 'vhd-directory' },
        { path: sound, recursive: true, layout: 'vhd-directory' },
        { path: path.join(root, 'a.json'), recursive: false },
      ],
      true,
    );

    expect(outcomes.map((o) => o.status)).toEqual(['ok', 'ok', 'ok']);
    const [first] = outcomes;
    expect(first?.status === 'ok' && first.warning?.code).toBe('EFOREIGN');
    expect(first?.status === 'ok' && first.warning?.message).toMatch(/(symbolic link|special file)/);
    // Locked all the same, XO's part of it with the rest: no link followed, the link out's target untouched.
    for (const locked of [broken, path.join(broken, 'blocks'), path.join(broken, 'blocks', '0', '0')])
      expect(isImmutable(locked), locked).toBe(true);
    expect(isImmutable(path.join(sound, 'blocks', '0', '0'))).toBe(true);
    expect(isImmutable(path.join(outside, 'victim'))).toBe(false);
    // Never cleared while it holds what XO does not write: for an admin to look at. A check (lift --dry-run) says so
    // first, as the clear will, and changes nothing; the sound one it would clear.
    const checked = await attributes.checkClear({ root, realRoot: root }, [
      { path: broken, recursive: true, layout: 'vhd-directory' },
      { path: sound, recursive: true, layout: 'vhd-directory' },
    ]);
    expect(checked.map((o) => (o.status === 'failed' ? o.code : o.status))).toEqual(['EFOREIGN', 'ok']);
    expect(isImmutable(path.join(sound, 'blocks', '0', '0')) && isImmutable(sound)).toBe(true);
    const [cleared] = await attributes.setImmutable(
      { root, realRoot: root },
      [{ path: broken, recursive: true, layout: 'vhd-directory' }],
      false,
    );
    expect(cleared).toMatchObject({ status: 'failed', code: 'EFOREIGN' });
    expect(isImmutable(path.join(broken, 'blocks', '0', '0'))).toBe(true);
  });

  it('locks no file of another owner through a second name: over NFS it may come from outside the remote', async () => {
    const { root, victim } = await remoteAndOutside();
    // XO's user may be squashed and unprivileged; nfsd does not apply fs.protected_hardlinks to a client's link.
    execFileSync('chown', ['4242', victim]);
    const data = path.join(root, 'data');
    const unit = path.join(data, 'planted.vhd');
    await mkdir(path.join(unit, 'blocks', '0'), { recursive: true });
    await writeFile(path.join(unit, 'blocks', '0', '0'), 'block');
    await link(victim, path.join(unit, 'blocks', '0', '1'));
    await link(victim, path.join(root, 'named.vhd'));

    const outcomes = await attributes.setImmutable(
      { root, realRoot: root },
      [
        { path: unit, recursive: true, layout: 'vhd-directory' },
        { path: path.join(root, 'named.vhd'), recursive: false },
      ],
      true,
    );

    const [directory, named] = outcomes;
    expect(directory?.status === 'ok' && directory.warning?.code).toBe('EFOREIGN');
    expect(isImmutable(path.join(unit, 'blocks', '0', '0'))).toBe(true);
    expect(named).toMatchObject({ status: 'failed', code: 'ELINKS' });
    expect(isImmutable(victim)).toBe(false);
  });

  it('locks a VHD directory whose entries are removed and made again while it locks', async () => {
    const root = await tempFolder();
    const unit = path.join(root, 'data', 'busy.vhd');
    const blocks = path.join(unit, 'blocks');
    await mkdir(blocks, { recursive: true });
    for (const part of ['header', 'footer', 'bat']) await writeFile(path.join(unit, part), part);
    await Promise.all(Array.from({ length: 5000 }, (_, n) => mkdir(path.join(blocks, String(n)))));
    // Layout-valid folders, removed and made again as fast as can be: a look before the lock kept failing (ENOENT).
    const churn = spawn(
      'perl',
      ['-e', 'while (1) { my $n = int(rand(5000)); rmdir("$ARGV[0]/$n"); mkdir("$ARGV[0]/$n") }', blocks],
      {
        stdio: 'ignore',
      },
    );
    stopBeforeCleanup(async () => {
      churn.kill('SIGKILL');
    });
    const outcomes: string[] = [];
    for (let i = 0; i < 5; i++) {
      const [outcome] = await attributes.setImmutable(
        { root, realRoot: root },
        [{ path: unit, recursive: true, layout: 'vhd-directory' }],
        true,
      );
      outcomes.push(outcome?.status === 'failed' ? outcome.code : (outcome?.status ?? 'none'));
      expect(isImmutable(blocks)).toBe(outcome?.status === 'ok');
      await attributes.setImmutable(
        { root, realRoot: root },
        [{ path: unit, recursive: true, layout: 'vhd-directory' }],
        false,
      );
    }
    churn.kill('SIGKILL');
    expect(outcomes).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
  });

  it('locks and reads names with newlines, tabs, backslashes and a leading dash', async () => {
    const root = await tempFolder();
    const names = ['-R', 'new\nline', 'tab\there', 'back\\slash', ' space', '\u00e9\n-i'];
    const files = names.map((name) => path.join(root, name));
    for (const file of files) await writeFile(file, 'x');
    const within = { root, realRoot: root };
    const outcomes = await attributes.setImmutable(
      within,
      files.map((p) => ({ path: p, recursive: false })),
      true,
    );
    expect(outcomes.map((o) => o.status)).toEqual(names.map(() => 'ok'));
    for (const file of files) expect(isImmutable(file), JSON.stringify(file)).toBe(true);
    expect([...(await attributes.isImmutable(within, files)).values()]).toEqual(names.map(() => true));
  });

  it('unlocks only the file it was told to expect', async () => {
    const root = await tempFolder();
    const file = path.join(root, 'a.vhd');
    await writeFile(file, 'x');
    const within = { root, realRoot: root };
    await attributes.setImmutable(within, [{ path: file, recursive: false }], true);
    const { ino } = await stat(file);
    const [wrong] = await attributes.setImmutable(within, [{ path: file, recursive: false, ino: `${ino + 1}` }], false);
    expect(wrong).toMatchObject({ status: 'failed', code: 'ECHANGED' });
    expect(isImmutable(file)).toBe(true);
    const [right] = await attributes.setImmutable(within, [{ path: file, recursive: false, ino: `${ino}` }], false);
    expect(right).toMatchObject({ path: file, status: 'ok' });
    expect(isImmutable(file)).toBe(false);
  });

  for (const [name, walk] of [
    ['openat2', ''],
    ['the component walk', '1'],
  ])
    it(`unlocks only the file of the inode and birth time it was told, a birth of 0 saying nothing (${name})`, async () => {
      process.env.XO_IMMUTABLE_FLAGS_WALK = walk;
      const root = await tempFolder();
      const file = path.join(root, 'a.vhd');
      await writeFile(file, 'x');
      const within = { root, realRoot: root };
      const [locked] = await attributes.setImmutable(within, [{ path: file, recursive: false }], true);
      const { ino, birthtimeNs } = locked?.status === 'ok' ? locked.identity! : { ino: '', birthtimeNs: '' };
      expect(birthtimeNs).toBe(`${(await stat(file, { bigint: true })).birthtimeNs}`);
      const target = { path: file, recursive: false, ino };
      const [reborn] = await attributes.setImmutable(within, [{ ...target, birthtimeNs: `${birthtimeNs}1` }], false);
      expect(reborn).toMatchObject({ status: 'failed', code: 'ECHANGED' });
      expect(reborn?.status === 'failed' && reborn.message).toContain(`inode/birth ${ino}/${birthtimeNs}, expected`);
      expect(isImmutable(file)).toBe(true);
      const [unknown] = await attributes.setImmutable(within, [{ ...target, birthtimeNs: '0' }], false);
      expect(unknown).toMatchObject({ status: 'ok' });
      await attributes.setImmutable(within, [{ path: file, recursive: false }], true);
      const [right] = await attributes.setImmutable(within, [{ ...target, birthtimeNs }], false);
      expect(right).toMatchObject({ status: 'ok' });
      expect(isImmutable(file)).toBe(false);
    });

  it('unlocks a file or a directory held to its layout, whichever the path opens, when told either (v, d)', async () => {
    const root = await tempFolder();
    const vhd = path.join(root, 'd.vhd');
    await mkdir(path.join(vhd, 'blocks', '0'), { recursive: true });
    for (const part of ['header', 'bat', 'blocks/0/0']) await writeFile(path.join(vhd, part), part);
    const date = path.join(root, 'date');
    await mkdir(date);
    await writeFile(path.join(date, 'data.json'), '{}');
    await writeFile(path.join(date, 'stray'), 'x');
    const file = path.join(root, 'f.json');
    await writeFile(file, '{}');
    execFileSync('chattr', ['-R', '+i', vhd, date, file]);
    const either = (p: string, layout: 'vhd-directory' | 'date-folder') => ({
      path: p,
      recursive: false,
      orDirectory: true,
      layout,
    });
    const outcomes = await attributes.setImmutable(
      { root, realRoot: root },
      [either(vhd, 'vhd-directory'), either(date, 'date-folder'), either(file, 'vhd-directory')],
      false,
    );
    expect(outcomes.map((o) => (o.status === 'failed' ? o.code : o.status))).toEqual(['ok', 'EFOREIGN', 'ok']);
    expect([vhd, path.join(vhd, 'blocks', '0', '0'), file].map(isImmutable)).toEqual([false, false, false]);
    expect([date, path.join(date, 'data.json')].map(isImmutable)).toEqual([true, true]);
    // Never to lock: a lock says what it locks.
    const set = runHelper(request('set', root, ['v - f.json', 'd - date']));
    expect(
      set.stdout
        .split('\n')
        .slice(0, 2)
        .map((line) => line.split('\t')[2]),
    ).toEqual(['EINVAL', 'EINVAL']);
  });

  for (const [name, walk] of [
    ['openat2', ''],
    ['the component walk', '1'],
  ])
    it(`unlocks a VM json only while no flat VHD of its backup is locked, looked for just before (J, ${name})`, async () => {
      process.env.XO_IMMUTABLE_FLAGS_WALK = walk;
      const { root, outside } = await remoteAndOutside();
      const within = { root, realRoot: root };
      const vm = path.join(root, 'xo-vm-backups', 'vm1');
      const dt = '20261201T010000Z';
      const json = path.join(vm, `${dt}.json`);
      const vdi = (job: string, disk: string) => path.join(vm, 'vdis', job, disk);
      for (const folder of [vdi('job', 'a'), vdi('job', 'b'), vdi('job2', 'c')])
        await mkdir(folder, { recursive: true });
      for (const folder of [vdi('job', 'a'), vdi('job', 'b'), vdi('job2', 'c')])
        await writeFile(path.join(folder, `${dt}.vhd`), 'disk');
      await writeFile(path.join(vdi('job', 'a'), '20261202T010000Z.vhd'), 'another backup');
      await writeFile(json, '{}');
      // Skipped, as the daemon's listing skips them: a link to a folder outside holding a locked disk, a dot folder.
      await writeFile(path.join(outside, `${dt}.vhd`), 'outside');
      await symlink(outside, vdi('job2', 'linked'));
      await mkdir(vdi('job2', '.hidden'));
      await writeFile(path.join(vdi('job2', '.hidden'), `${dt}.vhd`), 'hidden');
      const lockedDisk = path.join(vdi('job2', 'c'), `${dt}.vhd`);
      execFileSync('chattr', [
        '+i',
        json,
        lockedDisk,
        path.join(vdi('job', 'a'), '20261202T010000Z.vhd'),
        path.join(outside, `${dt}.vhd`),
        path.join(vdi('job2', '.hidden'), `${dt}.vhd`),
      ]);
      const target = { path: json, recursive: false, afterFlatVhds: true };

      const [held] = await attributes.setImmutable(within, [target], false);
      expect(held).toMatchObject({ status: 'failed', code: 'EHELD' });
      expect(held?.status === 'failed' && held.message).toContain(`vdis/job2/c/${dt}.vhd is still locked`);
      expect(isImmutable(json)).toBe(true);

      execFileSync('chattr', ['-i', lockedDisk]);
      const [lifted] = await attributes.setImmutable(within, [target], false);
      expect(lifted).toMatchObject({ status: 'ok' });
      expect(isImmutable(json)).toBe(false);
      // Only a json of a VM folder is one: anything else is refused, untouched.
      const other = path.join(root, 'a.json');
      await writeFile(other, '{}');
      execFileSync('chattr', ['+i', other]);
      const [refused] = await attributes.setImmutable(within, [{ ...target, path: other }], false);
      expect(refused).toMatchObject({ status: 'failed', code: 'EINVAL' });
      expect(isImmutable(other)).toBe(true);
    });

  it('says a folder on the way made a file is not one any more when clearing (failed), a link when locking', async () => {
    const root = await tempFolder();
    await writeFile(path.join(root, 'vm'), 'a file where the folder was');
    for (const walk of ['', '1']) {
      const out = runHelper(request('clear', root, ['F - vm/a.json']), [HELPER], { XO_IMMUTABLE_FLAGS_WALK: walk });
      expect(out.stdout).toMatch(/^0\tfailed\tENOTDIR\t.*\/vm is not a folder any more \(renamed\?\): not touched\n/);
      const set = runHelper(request('set', root, ['F - vm/a.json']), [HELPER], { XO_IMMUTABLE_FLAGS_WALK: walk });
      expect(set.stdout).toMatch(/^0\tfailed\tECONFINE\t/);
    }
  });

  it('touches nothing when the root no longer resolves where it did at start, or a path is outside it', async () => {
    const { root, victim } = await remoteAndOutside();
    await writeFile(path.join(root, 'a'), 'x');
    const moved = await attributes.setImmutable(
      { root, realRoot: '/somewhere/else' },
      [{ path: path.join(root, 'a'), recursive: false }],
      true,
    );
    expect(moved).toMatchObject([{ status: 'failed', code: 'ECONFINE' }]);
    const outside = await attributes.setImmutable(
      { root, realRoot: root },
      [
        { path: victim, recursive: false },
        { path: path.join(root, '..', path.basename(victim)), recursive: false },
      ],
      true,
    );
    expect(outside.map((o) => o.status === 'failed' && o.code)).toEqual(['ECONFINE', 'ECONFINE']);
    expect(isImmutable(path.join(root, 'a'))).toBe(false);
    expect(isImmutable(victim)).toBe(false);
  });

  it('refuses, by itself, a record that is empty, cut short, of an unknown kind or with a bad inode', async () => {
    const root = await tempFolder();
    await writeFile(path.join(root, 'a'), 'x');
    const records = ['', 'F - ', 'F -', 'F', 'X - a', 'F 12x a', 'F -1 a', 'V - .', 'F - a/../a', 'R - a', '? - a'];
    records.push('F -:1 a', 'F 1: a', 'F 1:2:3 a', 'F 1:x a', 'v - a', 'd - a');
    const out = runHelper(request('set', root, records));
    const lines = out.stdout.trim().split('\n');
    expect(lines.at(-1)).toBe(`end\t${records.length}`);
    expect(lines.slice(0, -1).map((line) => line.split('\t').slice(1, 3))).toEqual(
      records.map(() => ['failed', 'EINVAL']),
    );
    // Nothing was locked, the remote itself least of all.
    expect(isImmutable(root)).toBe(false);
    expect(isImmutable(path.join(root, 'a'))).toBe(false);
  });

  it('acts on nothing past where a request is cut short, and ends at a request it cannot read', async () => {
    const root = await tempFolder();
    const [a, b] = [path.join(root, 'a'), path.join(root, 'b')];
    await writeFile(a, 'x');
    await writeFile(b, 'x');
    const cut = runHelper(request('set', root, ['F - a', 'F - b']).slice(0, -1));
    expect(cut.status).toBe(3);
    expect(cut.stdout).toMatch(/^0\tok\t-\t\t[^\n]*\n$/);
    const unreadable = [
      ...['set x', 'chmod 1', 'set 1 2', ''].map((header) => `${header}\0${root}\0${root}\0F - b\0`),
      `set 1\0${root}\0`,
    ];
    for (const input of unreadable) {
      const refused = runHelper(input);
      expect(refused.status, JSON.stringify(input)).toBe(3);
      expect(refused.stdout).toMatch(/^anchor\tEINVAL\tmalformed request "[^"]*": nothing done\n$/);
    }
    expect([isImmutable(a), isImmutable(b)]).toEqual([true, false]);
  });

  it('refuses to run on a machine whose numbers it does not know, saying so', async () => {
    const root = await tempFolder();
    // The ELF header of a 64-bit little-endian MIPS binary, as if perl had been built for one.
    const header = Buffer.alloc(20);
    Buffer.from('\x7fELF\x02\x01', 'latin1').copy(header);
    header.writeUInt16LE(8, 18);
    const fake = path.join(root, 'mips-perl');
    await writeFile(fake, header);
    const load = 'our $MACHINE_FILE = shift @ARGV; my $helper = shift @ARGV; do $helper; die $@ if $@';
    const out = runHelper(request('get', root, ['? - .']), ['-e', load, fake, HELPER]);
    expect(out.status).toBe(3);
    expect(out.stdout).toMatch(/^anchor\tEMACHINE\t.*x86_64 and aarch64 Linux only, not ELF machine 8\n$/);
  });

  it('opens through openat2 where the kernel has it, and by the component walk when told to', async () => {
    const root = await tempFolder();
    await mkdir(path.join(root, 'vm'));
    await writeFile(path.join(root, 'vm', 'a.json'), '{}');
    for (const walk of ['', '1']) {
      const input = request('get', root, ['? - vm/a.json']);
      const out = runHelper(input, [HELPER], { XO_IMMUTABLE_FLAGS_WALK: walk });
      expect(out.stdout).toMatch(/^0\toff\t-\t\t\d+ \d+ 2 \d+ \d+ \d+\nend\t1\n$/);
      const traced = spawnSync('strace', ['-f', '-e', 'trace=openat2,openat', 'perl', HELPER], {
        input,
        encoding: 'utf8',
        env: { ...process.env, XO_IMMUTABLE_FLAGS_WALK: walk },
      });
      if (traced.error !== undefined) continue;
      expect(traced.stderr.includes('openat2('), `openat2 used with XO_IMMUTABLE_FLAGS_WALK=${walk}`).toBe(walk === '');
    }
  });

  it('says to install perl when it is missing', async () => {
    process.env.PATH = await tempFolder('xo-immutable-emptybin-');
    const root = await tempFolder();
    await expect(
      attributes.setImmutable({ root, realRoot: root }, [{ path: path.join(root, 'x'), recursive: false }], true),
    ).rejects.toSatisfy(
      (error: unknown) => error instanceof AppError && error.code === 'PERL_MISSING' && error.hint.includes('perl'),
    );
  });
});
