import { spawnSync } from 'node:child_process';
import {
  chownSync,
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { DAY, startDaemon } from '../support/daemon.js';
import { allImmutable, isImmutable, tempFolder, tempRemote, writeConfigFile } from '../support/remote.js';

const BIN = path.resolve('bin/xo-immutable-backups.js');

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

interface Report {
  ok: boolean;
  backup: string;
  staged: boolean;
  files: { path: string; bytes: number; method?: string }[];
  bytes: number;
  refusals: { path: string; reason: string }[];
}

const VM = '6f1b2c3d-0000-4000-8000-00000000aaaa';

// Two backups of one VM (a VHD directory and a flat disk each) and one of another VM, locked by the real daemon.
async function lockedRemote(options: { encrypted?: boolean } = {}) {
  const remote = await tempRemote();
  const encrypted = options.encrypted === true;
  if (encrypted) writeFileSync(path.join(remote.root, 'encryption.json'), '{"algorithm":"chacha20-poly1305"}');
  if (encrypted) writeFileSync(path.join(remote.root, 'metadata.json'), Buffer.from('ciphertext canary'));
  const disks = encrypted
    ? [{ type: 'vhd-directory' as const, blocks: 4 }]
    : [{ type: 'vhd-directory' as const, blocks: 4 }, { type: 'flat' as const }];
  const older = await writeVmBackup(remote.root, {
    vm: VM,
    datetime: xoDatetime(Date.now() - 2 * DAY),
    disks,
    encrypted,
  });
  const newer = await writeVmBackup(remote.root, { vm: VM, datetime: xoDatetime(Date.now() - DAY), disks, encrypted });
  const other = await writeVmBackup(remote.root, { datetime: xoDatetime(Date.now() - DAY), encrypted });
  // Written hours ago: an encrypted json (ciphertext) counts as complete once unchanged for jsonSettleTime.
  const then = new Date(Date.now() - DAY / 4);
  for (const json of [older.label, newer.label, other.label]) utimesSync(json, then, then);
  const { daemon } = await startDaemon(remote, { config: { jsonSettleMs: 0 } });
  await daemon.stop();
  const units = [...older.units, ...newer.units, ...other.units];
  expect(allImmutable(units)).toBe(true);
  return { remote, config: await writeConfigFile(remote), older, newer, other, units };
}

describe('xo-immutable-backups stage-restore', () => {
  it('copies the newest backup and what it is built on into a mutable copy; the originals stay locked', async () => {
    const { remote, config, newer, units } = await lockedRemote();
    const to = path.join(await tempFolder(), 'staged');
    const result = run(['stage-restore', '-c', config, '--remote', 'r', '--vm', VM, '--to', to, '--json']);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const report = JSON.parse(result.stdout) as Report;
    expect(report).toMatchObject({ ok: true, staged: true, refusals: [] });
    expect(report.backup).toBe(path.basename(newer.label, '.json'));
    const copied = report.files.map((f) => f.path);
    // The backup itself, file by file (a VHD directory with everything inside it)...
    for (const unit of newer.units)
      expect(
        copied.some((p) => path.join(remote.root, p).startsWith(unit)),
        unit,
      ).toBe(true);
    // ...laid out as on the remote, byte for byte, mutable.
    for (const file of report.files) {
      const copy = path.join(to, file.path);
      expect(readFileSync(copy).equals(readFileSync(path.join(remote.root, file.path))), file.path).toBe(true);
      expect(isImmutable(copy), file.path).toBe(false);
      expect(file.method).toBe('copy');
    }
    expect(report.bytes).toBe(report.files.reduce((sum, f) => sum + f.bytes, 0));
    // Neither XO's cache (it would list backups the copy lacks), nor the other VM, nor our immutability.json.
    expect(copied.filter((p) => p.endsWith('cache.json.gz') || p.includes('immutability'))).toEqual([]);
    expect(copied.every((p) => p.startsWith(`xo-vm-backups/${VM}/`))).toBe(true);
    expect(existsSync(path.join(to, 'xo-vm-backups', VM, path.basename(newer.label)))).toBe(true);
    expect(allImmutable(units)).toBe(true);
  });

  it('--backup picks an older one; --dry-run lists the files and bytes and creates nothing', async () => {
    const { config, older } = await lockedRemote();
    const to = path.join(await tempFolder(), 'staged');
    const datetime = path.basename(older.label, '.json');
    const args = ['stage-restore', '-c', config, '--remote', 'r', '--vm', VM, '--backup', datetime, '--to', to];
    const dry = run([...args, '--dry-run', '--json']);
    expect(dry.status).toBe(0);
    const report = JSON.parse(dry.stdout) as Report;
    expect(report).toMatchObject({ backup: datetime, staged: false });
    expect(report.files.map((f) => f.path)).toContain(`xo-vm-backups/${VM}/${datetime}.json`);
    expect(report.bytes).toBeGreaterThan(0);
    expect(existsSync(to)).toBe(false);
    const human = run([...args, '--dry-run']);
    expect(human.stdout).toContain(`would stage ${report.files.length} file(s)`);
    expect(existsSync(to)).toBe(false);
  });

  it('refuses a target inside a protected remote, or one that is not empty (exit 2, nothing written)', async () => {
    const { remote, config } = await lockedRemote();
    const inside = run([
      'stage-restore',
      '-c',
      config,
      '--remote',
      'r',
      '--vm',
      VM,
      '--to',
      path.join(remote.root, 's'),
    ]);
    expect(inside.status).toBe(2);
    expect(inside.stderr).toContain('error [STAGE_TARGET_REFUSED]');
    expect(inside.stderr).toContain('inside the protected remote "r"');
    expect(existsSync(path.join(remote.root, 's'))).toBe(false);
    const busy = await tempFolder();
    writeFileSync(path.join(busy, 'keep'), 'admin data');
    const notEmpty = run(['stage-restore', '-c', config, '--remote', 'r', '--vm', VM, '--to', busy]);
    expect(notEmpty.status).toBe(2);
    expect(notEmpty.stderr).toContain('exists and is not empty');
  });

  it('names a symlink or a hard link planted in a backup and copies nothing (exit 1)', async () => {
    const { remote, config, newer } = await lockedRemote();
    // Planted by someone holding XO's credentials: a newer backup whose VHD directory holds a link and a hard link.
    const vdiFolder = path.dirname(newer.units.find((u) => u.endsWith('.alias.vhd'))!);
    const secret = path.join(remote.base, 'secret');
    writeFileSync(secret, 'root only');
    // Of another owner than the VM folder's: a file of XO's own user with a second name is copied (below).
    chownSync(secret, 4242, 4242);
    const alias = path.join(vdiFolder, `${xoDatetime(Date.now() - DAY / 2)}.alias.vhd`);
    writeFileSync(alias, 'data/planted.vhd');
    await mkdir(path.join(vdiFolder, 'data', 'planted.vhd'));
    symlinkSync('/etc/passwd', path.join(vdiFolder, 'data', 'planted.vhd', 'header'));
    linkSync(secret, path.join(vdiFolder, 'data', 'planted.vhd', 'footer'));
    const json = path.join(path.dirname(newer.label), `${path.basename(alias, '.alias.vhd')}.json`);
    writeFileSync(
      json,
      JSON.stringify({ mode: 'delta', vhds: { x: path.relative(path.dirname(newer.label), alias) } }),
    );
    const to = path.join(await tempFolder(), 'staged');
    const result = run(['stage-restore', '-c', config, '--remote', 'r', '--vm', VM, '--to', to]);
    expect(result.status).toBe(1);
    expect(result.stdout).toMatch(/REFUSED .*planted\.vhd\/header: a symbolic link/);
    expect(result.stdout).toMatch(/REFUSED .*planted\.vhd\/footer: a file with 2 hard links, of uid 4242/);
    expect(result.stdout).toContain('nothing was copied');
    expect(existsSync(to)).toBe(false);
  });

  it("copies a file of XO's own user that was given a second name, and says so", async () => {
    const remote = await tempRemote();
    const backup = await writeVmBackup(remote.root, { vm: VM, datetime: xoDatetime(Date.now() - DAY) });
    const flat = backup.units.find((u) => u.endsWith('.vhd'))!;
    // Linked by someone holding XO's credentials while XO wrote it: locked all the same (ELINKS), as XO's user owns it.
    linkSync(flat, path.join(remote.root, '.pin'));
    const { daemon } = await startDaemon(remote, { config: { jsonSettleMs: 0 } });
    await daemon.stop();
    expect(allImmutable(backup.units)).toBe(true);
    const to = path.join(await tempFolder(), 'staged');
    const config = await writeConfigFile(remote);
    const result = run(['stage-restore', '-c', config, '--remote', 'r', '--vm', VM, '--to', to, '--json']);
    expect(result.status).toBe(0);
    const report = JSON.parse(result.stdout) as Report & { notes: string[] };
    expect(report).toMatchObject({ staged: true, refusals: [] });
    const relative = path.relative(remote.root, flat);
    expect(report.notes).toContainEqual(expect.stringMatching(new RegExp(`^${relative}.* second hard link`)));
    expect(readFileSync(path.join(to, relative)).equals(readFileSync(flat))).toBe(true);
  });

  it('encrypted remote: copies the ciphertext as is, with the root files XO needs to open it', async () => {
    const { remote, config, newer } = await lockedRemote({ encrypted: true });
    // In the backup's VDI folder, a base older than it (its chain, by name) and a disk newer than it (not its chain).
    const vdiFolder = path.dirname(newer.units.find((u) => u.endsWith('.alias.vhd'))!);
    const vhdDirectory = (datetime: string): string[] => {
      const directory = path.join(vdiFolder, 'data', `${datetime}.vhd`);
      mkdirSync(directory);
      for (const part of ['header', 'footer', 'bat']) writeFileSync(path.join(directory, part), Buffer.alloc(64, 3));
      writeFileSync(path.join(vdiFolder, `${datetime}.alias.vhd`), Buffer.alloc(40, 9));
      return [path.join(vdiFolder, `${datetime}.alias.vhd`), directory];
    };
    const base = vhdDirectory(xoDatetime(Date.now() - 5 * DAY));
    const later = vhdDirectory(xoDatetime(Date.now()));
    const to = path.join(await tempFolder(), 'staged');
    const result = run(['stage-restore', '-c', config, '--remote', 'r', '--vm', VM, '--to', to, '--json']);
    expect(result.status).toBe(0);
    const copied = (JSON.parse(result.stdout) as Report).files.map((f) => f.path);
    expect(copied).toEqual(expect.arrayContaining(['encryption.json', 'metadata.json']));
    const isCopied = (unit: string): boolean => copied.some((p) => path.join(remote.root, p).startsWith(unit));
    for (const unit of [...newer.units, ...base]) expect(isCopied(unit), unit).toBe(true);
    for (const unit of later) expect(isCopied(unit), unit).toBe(false);
    for (const file of copied)
      expect(readFileSync(path.join(to, file)).equals(readFileSync(path.join(remote.root, file))), file).toBe(true);
  });

  it('--help names its exit codes', () => {
    const help = run(['stage-restore', '--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('--dry-run');
    expect(help.stdout).toMatch(/Exit codes:\n {2}0 {2}staged/);
    expect(help.stdout).toContain('2  bad usage or config, or the target was refused');
  });
});
