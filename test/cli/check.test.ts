import { spawnSync } from 'node:child_process';
import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { tempRemote } from '../support/remote.js';

const BIN = path.resolve('bin/xo-immutable-backups.js');

async function config(indexPath: string, root: string, base: string): Promise<string> {
  const file = path.join(base, 'config.json');
  await writeFile(file, JSON.stringify({ indexPath, remotes: { r: { root, immutabilityDuration: '7d' } } }));
  return file;
}

describe('xo-immutable-backups check', () => {
  it('passes each check on a good setup, one line each, and names the missing unit file with its fix', async () => {
    const remote = await tempRemote();
    const file = await config(remote.indexPath, remote.root, remote.base);
    const result = spawnSync(process.execPath, [BIN, 'check', '--config', file], { encoding: 'utf8', timeout: 20_000 });
    const lines = result.stdout.trim().split('\n');
    for (const check of [
      'config',
      'capabilities',
      'flag helper (perl)',
      'remote r: root',
      'remote r: immutable attribute',
      'remote r: index outside the remote',
      'remote r: kind',
      'inotify watches',
    ]) {
      expect(
        lines.find((l) => l.includes(` ${check}:`)),
        check,
      ).toMatch(/^OK /);
    }
    // A new, empty remote: the admin learns that either order of set-up with XO works.
    expect(lines.find((l) => l.includes(' remote r: kind:'))).toContain('before or after starting the service');
    const unit = lines.findIndex((l) => l.includes(' systemd unit:'));
    if (lines[unit]?.startsWith('FAIL')) {
      expect(result.status).toBe(1);
      expect(lines[unit + 1]).toContain('fix: xo-immutable-backups install-unit');
    }
  });

  it('warns that XO cannot restore locked flat VHDs, and only where a VM folder holds some', async () => {
    const remote = await tempRemote();
    const file = await config(remote.indexPath, remote.root, remote.base);
    const line = (): string | undefined =>
      spawnSync(process.execPath, [BIN, 'check', '--config', file], { encoding: 'utf8', timeout: 20_000 })
        .stdout.split('\n')
        .find((l) => l.includes(' remote r: restorable while locked:'));
    await writeVmBackup(remote.root, { datetime: xoDatetime(Date.now()), disks: [{ type: 'vhd-directory' }] });
    expect(line()).toMatch(/^OK .*no flat VHD/);
    await writeVmBackup(remote.root, { datetime: xoDatetime(Date.now()), disks: [{ type: 'flat' }] });
    expect(line()).toMatch(
      /WARNING: 1 VM folder\(s\) hold flat \.vhd files, which XO cannot restore while they are locked/,
    );
    // The way to restore meanwhile without unlocking anything.
    expect(line()).toContain('xo-immutable-backups stage-restore');
  });

  it("checks a remote's key file: root-only, or a failed check with the chmod to run, and never the key", async () => {
    const remote = await tempRemote();
    const key = 'check-suite-key-of-32-characters';
    const keyFile = path.join(remote.base, 'r.key');
    await writeFile(keyFile, key, { mode: 0o644 });
    await chmod(keyFile, 0o644);
    const file = path.join(remote.base, 'config.json');
    const remotes = { r: { root: remote.root, immutabilityDuration: '7d', encryptionKeyFile: keyFile } };
    await writeFile(file, JSON.stringify({ indexPath: remote.indexPath, remotes }));
    const check = () =>
      spawnSync(process.execPath, [BIN, 'check', '--config', file], { encoding: 'utf8', timeout: 20_000 });
    const refused = check();
    expect(refused.status).toBe(1);
    const lines = refused.stdout.split('\n');
    const kind = lines.findIndex((l) => l.includes(' remote r: kind:'));
    expect(lines[kind]).toMatch(new RegExp(`^FAIL .*the key file ${keyFile} has mode 0644`));
    expect(lines[kind + 1]).toContain(`fix: run: chown root:root ${keyFile} && chmod 600 ${keyFile}`);
    expect(refused.stdout + refused.stderr).not.toContain(key);

    await chmod(keyFile, 0o600);
    const accepted = check().stdout.split('\n');
    // A new remote: the key is checked against XO's canary once XO has set the remote up.
    expect(accepted.find((l) => l.includes(' remote r: kind:'))).toMatch(/^OK .*checked against XO's metadata\.json/);
  });

  it('fails with the fix named when CAP_LINUX_IMMUTABLE is dropped', async () => {
    const remote = await tempRemote();
    const file = await config(remote.indexPath, remote.root, remote.base);
    const result = spawnSync(
      'capsh',
      ['--drop=cap_linux_immutable', '--', '-c', `exec "${process.execPath}" "${BIN}" check --config "${file}"`],
      { encoding: 'utf8', timeout: 20_000 },
    );
    expect(result.status).toBe(1);
    expect(result.stdout).toMatch(/FAIL capabilities: This process lacks CAP_LINUX_IMMUTABLE/);
    expect(result.stdout).toContain(
      'fix: run it as root; under systemd keep CAP_LINUX_IMMUTABLE in CapabilityBoundingSet=',
    );
    expect(result.stdout).toMatch(/FAIL remote r: immutable attribute/);
  });

  it('fails with the fix named when the index is inside a remote', async () => {
    const remote = await tempRemote();
    const file = await config(path.join(remote.root, 'index'), remote.root, remote.base);
    const result = spawnSync(process.execPath, [BIN, 'check', '--config', file, '--json'], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.status).toBe(1);
    const report = JSON.parse(result.stdout) as {
      ok: boolean;
      checks: { check: string; ok: boolean; detail: string; fix?: string }[];
    };
    expect(report.ok).toBe(false);
    expect(report.checks[0]).toMatchObject({ check: 'config', ok: false });
    expect(report.checks[0]?.detail).toContain('indexPath: overlaps remote "r"');
  });
});
