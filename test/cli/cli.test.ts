import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { mountFilesystem } from '../support/filesystems.js';
import { spawnProtect } from '../support/daemon.js';
import { allImmutable, isImmutable, tempRemote, waitFor, type TestRemote } from '../support/remote.js';

// The CLI as an admin and systemd run it: a separate process, through the bin launchers, built into dist/ by `npm test`.
const BIN = path.resolve('bin/xo-immutable-backups.js');
const ALIAS = path.resolve('bin/xo-immutable-remote.js');

function run(args: string[], command = BIN): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [command, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

async function writeConfig(remote: TestRemote, remoteSettings: Record<string, unknown> = {}): Promise<string> {
  const file = path.join(remote.base, 'config.json');
  await writeFile(
    file,
    JSON.stringify({
      indexPath: remote.indexPath,
      remotes: { r: { root: remote.root, immutabilityDuration: '7d', ...remoteSettings } },
    }),
  );
  return file;
}

describe('xo-immutable-backups CLI', () => {
  it('has --help on every command, and refuses an unknown one with exit 2', () => {
    for (const args of [['--help'], ['protect', '--help'], ['demo', '--help']]) {
      const result = run(args);
      expect(result.status, args.join(' ')).toBe(0);
      expect(result.stdout).toContain('Usage: xo-immutable-backups');
      expect(result.stdout).toContain('Exit codes');
    }
    const unknown = run(['frobnicate']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'frobnicate'");
  });

  it("lists each command's own exit codes in its --help", () => {
    const protect = run(['protect', '--help']).stdout;
    expect(protect).toContain('0  stopped by SIGTERM or SIGINT');
    expect(protect).toContain('3  a start-up check failed');
    const status = run(['status', '--help']).stdout;
    expect(status).not.toContain('SIGTERM');
    expect(status).toContain('1  needs attention');
    expect(status).not.toMatch(/^ {2}3 /m);
    for (const command of ['verify', 'check', 'rebuild-index', 'lift']) {
      const help = run([command, '--help']).stdout;
      expect(help, command).toContain('Exit codes:');
      expect(help, command).not.toContain('SIGTERM');
    }
    expect(run(['demo', '--help']).stdout).toContain('130  interrupted by SIGINT (Ctrl-C), after cleaning up');
  });

  it('installs xo-immutable-remote as the protect command', () => {
    const result = run(['--help'], ALIAS);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('Usage: xo-immutable-backups protect');
  });

  it('refuses a bad config with exit 2, naming every bad key, before touching the remote', async () => {
    const remote = await tempRemote();
    const file = path.join(remote.base, 'config.json');
    await writeFile(
      file,
      JSON.stringify({
        indexPath: remote.indexPath,
        remotes: { r: { root: remote.root, immutabilityDuration: '2h', rebuildIndexOnStrat: true } },
      }),
    );
    const result = run(['protect', '--config', file]);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('CONFIG_INVALID');
    expect(result.stderr).toContain('remotes.r.immutabilityDuration');
    expect(result.stderr).toContain('remotes.r.rebuildIndexOnStrat');
    expect(existsSync(path.join(remote.root, 'immutability.json'))).toBe(false);
    expect(existsSync(remote.indexPath)).toBe(false);
  });

  it('names a missing config file and the way out', () => {
    const result = run(['protect', '--config', '/nonexistent/config.json']);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('/nonexistent/config.json does not exist');
    expect(result.stderr).toContain('config.sample.json');
  });

  it('refuses to start without CAP_LINUX_IMMUTABLE, naming it, with exit 3', async () => {
    const remote = await tempRemote();
    const file = await writeConfig(remote);
    const result = spawnSync(
      'capsh',
      ['--drop=cap_linux_immutable', '--', '-c', `exec "${process.execPath}" "${BIN}" protect --config "${file}"`],
      { encoding: 'utf8', timeout: 20_000 },
    );
    expect(result.status).toBe(3);
    expect(result.stderr).toContain('CAP_LINUX_IMMUTABLE');
    expect(existsSync(path.join(remote.root, 'immutability.json'))).toBe(false);
  });

  it('refuses a remote root that does not exist with exit 3, and does not create it', async () => {
    const remote = await tempRemote();
    const file = await writeConfig(remote);
    await writeFile(
      file,
      JSON.stringify({
        indexPath: remote.indexPath,
        remotes: { r: { root: path.join(remote.base, 'unmounted'), immutabilityDuration: '7d' } },
      }),
    );
    const result = run(['protect', '--config', file]);
    expect(result.status).toBe(3);
    expect(result.stderr).toContain('REMOTE_NOT_FOUND');
    expect(existsSync(path.join(remote.base, 'unmounted'))).toBe(false);
  });

  it('refuses a remote on a filesystem without +i support, naming the filesystem, with exit 3', async () => {
    const remote = await tempRemote();
    const root = await mountFilesystem('ramfs');
    const file = path.join(remote.base, 'config.json');
    await writeFile(
      file,
      JSON.stringify({ indexPath: remote.indexPath, remotes: { r: { root, immutabilityDuration: '7d' } } }),
    );
    const result = run(['protect', '--config', file]);
    expect(result.status).toBe(3);
    expect(result.stderr).toContain('SELF_TEST_FAILED');
    expect(result.stderr).toContain('filesystem ramfs');
    expect(existsSync(path.join(root, 'immutability.json'))).toBe(false);
  });

  it('exits 0 on a SIGTERM that arrives during its first lift pass, right after start-up', async () => {
    const remote = await tempRemote();
    const file = await writeConfig(remote);
    for (let i = 0; i < 20; i++)
      await writeVmBackup(remote.root, { vm: `vm-${i}`, datetime: xoDatetime(Date.now() - 60_000) });
    let signalled = false;
    const { child, exited } = spawnProtect(file, (stdout) => {
      if (stdout.includes('protecting 1 remote') && !signalled) {
        signalled = true;
        child.kill('SIGTERM');
      }
    });
    const code = await Promise.race([
      exited,
      new Promise<string>((resolve) => setTimeout(() => resolve('still running after 15 s'), 15_000)),
    ]);
    expect(code).toBe(0);
  });

  it('runs as a daemon that locks backups, logs JSON lines, and exits 0 on SIGTERM', async () => {
    const remote = await tempRemote();
    const file = await writeConfig(remote);
    const waiting = await writeVmBackup(remote.root, { datetime: xoDatetime(Date.now() - 60_000) });
    const { child, exited, stdout } = spawnProtect(file);
    try {
      await waitFor(() => stdout().includes('protecting 1 remote'), 'the daemon to start');
      expect(allImmutable(waiting.units)).toBe(true);
      const fresh = await writeVmBackup(remote.root, { datetime: xoDatetime(Date.now()) });
      await waitFor(() => allImmutable(fresh.units), 'the new backup to be locked');
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    const lines = stdout()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string; level: string; units?: number });
    expect(lines.filter((l) => l.msg.startsWith('locked vm backup'))).toHaveLength(2);
    expect(lines.at(-1)?.msg).toBe('stopped');
    expect(isImmutable(path.join(remote.root, 'immutability.json'))).toBe(true);
  });
});
