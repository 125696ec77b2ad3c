import { execFileSync } from 'node:child_process';
import { mkdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { askHelper } from '../support/flag-helper.js';
import { isImmutable, tempFolder } from '../support/remote.js';

// The flag helper's J records (a VM json cleared only while no flat `<dt>.vhd` of its backup is immutable) on a VM
// folder written by someone holding XO's credentials: the look must answer, stay inside, and hold only for a disk.

const DT = '20261201T010000Z';
const attributes = new IoctlAdapter();
const walkBefore = process.env.XO_IMMUTABLE_FLAGS_WALK;
afterEach(() => {
  if (walkBefore === undefined) delete process.env.XO_IMMUTABLE_FLAGS_WALK;
  else process.env.XO_IMMUTABLE_FLAGS_WALK = walkBefore;
});

// A remote with one VM folder, its json locked: the json's path and the VM folder.
async function vmWithJson(): Promise<{ root: string; vm: string; json: string }> {
  const root = await tempFolder();
  const vm = path.join(root, 'xo-vm-backups', 'vm1');
  await mkdir(path.join(vm, 'vdis'), { recursive: true });
  const json = path.join(vm, `${DT}.json`);
  await writeFile(json, '{}');
  execFileSync('chattr', ['+i', json]);
  return { root, vm, json };
}

// A VDI folder of the VM folder holding the backup's flat disk, locked or not.
async function disk(vm: string, job: string, vdi: string, locked: boolean): Promise<string> {
  const folder = path.join(vm, 'vdis', job, vdi);
  await mkdir(folder, { recursive: true });
  const file = path.join(folder, `${DT}.vhd`);
  await writeFile(file, 'disk');
  if (locked) execFileSync('chattr', ['+i', file]);
  return file;
}

// 40 jsons of one VM folder, locked (20261201T010010Z to ...49Z).
async function lockedJsons(vm: string): Promise<string[]> {
  const jsons: string[] = [];
  for (let i = 10; i < 50; i++) {
    const json = path.join(vm, `20261201T0100${i}Z.json`);
    await writeFile(json, '{}');
    jsons.push(json);
  }
  execFileSync('chattr', ['+i', ...jsons]);
  return jsons;
}

// One clear request of J records, to the helper run directly with at most `files` descriptors open.
function clearJsons(
  root: string,
  relatives: readonly string[],
  files: number,
  walk: string,
  env: Record<string, string> = {},
) {
  return askHelper(
    'clear',
    root,
    relatives.map((r) => `J - ${r}`),
    { env: { XO_IMMUTABLE_FLAGS_WALK: walk, ...env }, openFiles: files },
  );
}

// The environment that makes the helper count the calls of one perl builtin (`override`: "<name> = sub { $count++;
// ... }", installed as CORE::GLOBAL::<name>), and the count, read once the helper has exited.
async function perlCounter(override: string): Promise<{ env: Record<string, string>; count: () => Promise<number> }> {
  const counter = await tempFolder();
  const countFile = path.join(counter, 'count');
  await writeFile(
    path.join(counter, 'CountCalls.pm'),
    [
      'package CountCalls;',
      'my $count = 0;',
      `BEGIN { *CORE::GLOBAL::${override} }`,
      "END { if (open(my $out, '>', $ENV{COUNT_CALLS_TO})) { print $out $count; close $out } }",
      '1;',
    ].join('\n'),
  );
  const env = { PERL5LIB: counter, PERL5OPT: '-MCountCalls', COUNT_CALLS_TO: countFile };
  return { env, count: async () => Number(await readFile(countFile, 'utf8')) };
}

const MODES = [
  ['openat2', ''],
  ['the component walk', '1'],
] as const;

describe.each(MODES)("the flag helper's look for a json's flat VHDs (%s)", (_name, walk) => {
  // Each folder of vdis/ held open while the next ones are opened: a VM folder with more job or VDI folders than the
  // helper may hold descriptors (made with XO's credentials: empty folders cost nothing) kept its jsons locked for good
  // (EHELD, "Too many open files"), whatever its disks. The look holds a bounded number of descriptors.
  it('looks through more job and VDI folders than it may hold descriptors open', async () => {
    const { root, vm, json } = await vmWithJson();
    for (let i = 0; i < 150; i++) await mkdir(path.join(vm, 'vdis', `job${i}`));
    for (let i = 0; i < 150; i++) await mkdir(path.join(vm, 'vdis', 'job0', `vdi${i}`));
    const cleared = await disk(vm, 'job77', 'vdi', false);
    const relative = path.relative(root, json);

    const [free] = clearJsons(root, [relative], 64, walk);
    expect(free).toMatchObject({ status: 'ok' });
    expect(isImmutable(json)).toBe(false);

    // And it still holds for a locked disk in the last folder looked at.
    execFileSync('chattr', ['+i', json]);
    await rm(cleared);
    await disk(vm, 'job149', 'vdi', true);
    const [held] = clearJsons(root, [relative], 64, walk);
    expect(held).toMatchObject({ status: 'failed', code: 'EHELD' });
    expect(held?.status === 'failed' && held.message).toContain(`vdis/job149/vdi/${DT}.vhd is still locked`);
    expect(isImmutable(json)).toBe(true);
  });

  // The lift sends a VM folder's due jsons together, and takes its turn with the lock batches: a look through every
  // folder of vdis/ for each json (folders cost XO's credentials nothing) made a pass cost jsons x folders, new backups
  // waiting unlocked meanwhile. The folders are listed once a request; each json's disk is still read before its clear.
  it("lists a VM folder's VDI folders once a request, not once a json", async () => {
    const { root, vm } = await vmWithJson();
    for (let i = 0; i < 30; i++) await mkdir(path.join(vm, 'vdis', `job${i}`));
    const jsons = await lockedJsons(vm);
    const kept = path.join(vm, 'vdis', 'job7', 'vdi', '20261201T010049Z.vhd');
    await mkdir(path.dirname(kept), { recursive: true });
    await writeFile(kept, 'disk');
    execFileSync('chattr', ['+i', kept]);
    // perl's opendir counted, every listing the look makes.
    const { env, count } = await perlCounter('opendir = sub (*$) { $count++; return CORE::opendir($_[0], $_[1]) }');

    const answers = clearJsons(
      root,
      jsons.map((json) => path.relative(root, json)),
      1024,
      walk,
      env,
    );
    expect(answers.slice(0, -1).map((a) => a?.status)).toEqual(jsons.slice(0, -1).map(() => 'ok'));
    expect(answers.at(-1)).toMatchObject({ status: 'failed', code: 'EHELD' });
    expect(jsons.filter(isImmutable)).toEqual([jsons.at(-1)]);
    // vdis/, 30 job folders and one VDI folder: 32 listings for the 40 jsons (1,240 when each json looked again).
    expect(await count()).toBeLessThanOrEqual(32);
  });

  // Names are the attacker's: a tab or a newline in a job or VDI folder's name must not cut the answer (the next
  // record is answered as itself), and the disk under them still holds its json.
  it('holds a json for a locked disk under hostile folder names, and answers the records after it', async () => {
    const { root, vm, json } = await vmWithJson();
    const locked = await disk(vm, 'job\tone\n2\tok', 'vdi\\x\n0\tok', true);
    const other = path.join(root, 'xo-vm-backups', 'vm2', `${DT}.json`);
    await mkdir(path.dirname(other), { recursive: true });
    await writeFile(other, '{}');
    execFileSync('chattr', ['+i', other]);

    const answers = clearJsons(root, [path.relative(root, json), path.relative(root, other)], 1024, walk);
    expect(answers.map((a) => a?.status)).toEqual(['failed', 'ok']);
    expect(answers[0]).toMatchObject({ code: 'EHELD' });
    expect(answers[0]?.status === 'failed' && answers[0].message).toContain('\\x0a');
    expect(isImmutable(json)).toBe(true);
    expect(isImmutable(locked)).toBe(true);
    expect(isImmutable(other)).toBe(false);
  });

  // A J record is confined as every other: ".." or a VM folder that is a link to a folder outside (holding a json
  // and a mutable disk there) is refused before any look, and nothing outside changes.
  it('clears no json through "..", or through a VM folder that is a link out of the remote', async () => {
    const { root, vm } = await vmWithJson();
    const outside = await tempFolder('xo-immutable-outside-');
    const victim = path.join(outside, `${DT}.json`);
    await writeFile(victim, '{}');
    execFileSync('chattr', ['+i', victim]);
    await disk(outside, 'job', 'vdi', false);
    await symlink(outside, path.join(root, 'xo-vm-backups', 'linked'));
    await mkdir(path.join(root, 'xo-vm-backups', 'vm2'));

    const answers = clearJsons(
      root,
      [`xo-vm-backups/linked/${DT}.json`, `xo-vm-backups/vm2/../../${path.relative(root, victim)}`],
      1024,
      walk,
    );
    expect(answers.map((a) => a?.status === 'failed' && a.code)).toEqual(['ECONFINE', 'EINVAL']);
    expect(isImmutable(victim)).toBe(true);
    expect(isImmutable(path.join(vm, `${DT}.json`))).toBe(true);
  });

  // vdis/, a job folder or a VDI folder swapped for a link, a FIFO or a file: never entered or opened for reading
  // (a FIFO would hang the helper), and nothing outside read as a disk of the backup. A link holds nothing back,
  // as the daemon's own listing enters none (remote/read.ts, listFolder); the locked disk behind it keeps its flag.
  it('enters no link, FIFO or file put where a folder of vdis/ was, and answers', async () => {
    process.env.XO_IMMUTABLE_FLAGS_WALK = walk;
    const { root, vm, json } = await vmWithJson();
    const outside = await tempFolder('xo-immutable-outside-');
    const far = await disk(outside, 'job', 'vdi', true);
    const target = { path: json, recursive: false, afterFlatVhds: true };
    const within = { root, realRoot: root };
    const vdis = path.join(vm, 'vdis');
    const clear = async () => {
      execFileSync('chattr', ['+i', json]);
      const [outcome] = await attributes.setImmutable(within, [target], false);
      return outcome;
    };

    await rm(vdis, { recursive: true });
    await symlink(path.join(outside, 'vdis'), vdis);
    expect(await clear()).toMatchObject({ status: 'ok' });
    await rm(vdis);
    execFileSync('mkfifo', [vdis]);
    expect(await clear()).toMatchObject({ status: 'ok' });
    await rm(vdis);
    await mkdir(vdis);
    await symlink(path.join(outside, 'vdis', 'job'), path.join(vdis, 'job'));
    execFileSync('mkfifo', [path.join(vdis, 'fifo')]);
    await mkdir(path.join(vdis, 'job2'));
    await symlink(path.join(outside, 'vdis', 'job', 'vdi'), path.join(vdis, 'job2', 'vdi'));
    execFileSync('mkfifo', [path.join(vdis, 'job2', 'fifo')]);
    // A FIFO under the disk's name is no disk either.
    await mkdir(path.join(vdis, 'job2', 'vdi2'));
    execFileSync('mkfifo', [path.join(vdis, 'job2', 'vdi2', `${DT}.vhd`)]);
    expect(await clear()).toMatchObject({ status: 'ok' });
    expect(isImmutable(far)).toBe(true);

    // The real VDI folder moved back in: held again.
    await rename(path.join(outside, 'vdis', 'job'), path.join(vdis, 'job3'));
    expect(await clear()).toMatchObject({ status: 'failed', code: 'EHELD' });
    expect(isImmutable(json)).toBe(true);
  });
});

// With openat2 (the walk, for kernels without it, opens a component at a time through sysopen).
describe('the cost of the look for the jsons of a VM folder with many VDI folders', () => {
  // A json's disk is opened by name in each VDI folder for a VM folder's first two jsons of a request, then the VDI
  // folders are listed once: VDI folders cost XO's credentials nothing, so jsons x folders opens would let anyone
  // slow a pass down.
  it("opens a VM folder's VDI folders for its first two jsons only, then lists them once", async () => {
    const { root, vm } = await vmWithJson();
    for (let i = 0; i < 200; i++) await mkdir(path.join(vm, 'vdis', 'job', `vdi${i}`), { recursive: true });
    const jsons = await lockedJsons(vm);
    // perl's syscall counted: the opens (openat2), closes, statx and ioctl calls.
    const { env, count } = await perlCounter('syscall = sub { $count++; my $n = shift; return CORE::syscall($n, @_) }');

    const answers = clearJsons(
      root,
      jsons.map((json) => path.relative(root, json)),
      1024,
      '',
      env,
    );
    expect(answers.map((a) => a?.status)).toEqual(jsons.map(() => 'ok'));
    expect(jsons.filter(isImmutable)).toEqual([]);
    // Two jsons x 200 folders opened by name, then 200 listings; about 14 calls a json for its own clear. Opening by
    // name for every json would be 40 x 200 = 8,000 opens at least (8,285 calls, against 1,089).
    const calls = await count();
    expect(calls).toBeGreaterThan(2 * 200);
    expect(calls).toBeLessThan(4 * 200 + 40 * 20 + 400);
  });
});
