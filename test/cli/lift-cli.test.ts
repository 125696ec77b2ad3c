import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeConfigBackup, writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { DAY, startDaemon } from '../support/daemon.js';
import { allImmutable, isImmutable, tempRemote, type TestRemote, writeConfigFile } from '../support/remote.js';

const BIN = path.resolve('bin/xo-immutable-backups.js');

function run(args: string[], command = BIN): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [command, ...args], {
    encoding: 'utf8',
    timeout: 20_000,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

// Backups from 8 days ago (expired now, at 7d) and from yesterday, all locked by a daemon whose clock stood 8 days back.
async function expiredRemote(): Promise<{ remote: TestRemote; config: string; units: string[]; fresh: string[] }> {
  const remote = await tempRemote();
  const then = Date.now() - 8 * DAY;
  const old = [
    await writeVmBackup(remote.root, { datetime: xoDatetime(then) }),
    await writeConfigBackup(remote.root, 's', xoDatetime(then)),
  ];
  const recent = await writeVmBackup(remote.root, { datetime: xoDatetime(Date.now() - DAY) });
  // A daemon started now would lift the old ones at once: this one's clock stands 8 days back.
  // Its maxClockJump is widened so that the recent backup, a week ahead of its clock, is not named in the future.
  const { daemon } = await startDaemon(remote, {
    clock: { now: () => then + 3600_000 },
    config: { maxClockJumpMs: 10 * DAY },
  });
  await daemon.stop();
  const config = await writeConfigFile(remote);
  return { remote, config, units: old.flatMap((b) => b.units), fresh: recent.units };
}

describe('xo-immutable-backups lift', () => {
  it('prints what would be unlocked with --dry-run --json and changes nothing, then unlocks exactly that', async () => {
    const { config, units, fresh } = await expiredRemote();
    const dry = run(['lift', '--config', config, '--dry-run', '--json']);
    expect(dry.status).toBe(0);
    const planned = JSON.parse(dry.stdout) as {
      remotes: { remote: string; unlocked: number; kept: number; dryRun: boolean }[];
    };
    expect(planned.remotes[0]).toMatchObject({
      remote: 'r',
      dryRun: true,
      unlocked: units.length - 2,
      kept: fresh.length,
    });
    expect(allImmutable(units)).toBe(true);

    const lifted = run(['lift', '--config', config]);
    expect(lifted.status).toBe(0);
    // Piped: no progress on stderr.
    expect(lifted.stderr).toBe('');
    expect(lifted.stdout).toContain(
      `remote r: unlocked ${units.length - 2} unit(s); ${fresh.length} still inside their window stay locked`,
    );
    for (const unit of units) expect(isImmutable(unit), unit).toBe(false);
    expect(allImmutable(fresh)).toBe(true);
  });

  it('refuses --all without --yes when not on a terminal, and makes the remote mutable with it', async () => {
    const { config, remote, fresh } = await expiredRemote();
    const refused = run(['lift', '--config', config, '--all', '--remote', 'r']);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain('--yes');
    expect(allImmutable(fresh)).toBe(true);

    const done = run(['lift', '--config', config, '--all', '--remote', 'r', '--yes']);
    expect(done.status).toBe(0);
    for (const unit of fresh) expect(isImmutable(unit)).toBe(false);
    expect(isImmutable(path.join(remote.root, 'immutability.json'))).toBe(false);
  });

  it('names an unknown remote, and is installed as xo-lift-remote-immutability', async () => {
    const { config } = await expiredRemote();
    const unknown = run(['lift', '--config', config, '--remote', 'nope']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('use one of: r');
    const help = run(['--help'], path.resolve('bin/xo-lift-remote-immutability.js'));
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('Usage: xo-immutable-backups lift');
    expect(help.stdout).toContain('--dry-run');
  });

  it('shows progress on stderr when run on a terminal', async () => {
    const { config } = await expiredRemote();
    // script(1) gives the command a terminal; its transcript holds what the terminal showed.
    const result = spawnSync(
      'script',
      ['-qec', `"${process.execPath}" "${BIN}" lift --dry-run --config "${config}"`, '/dev/null'],
      { encoding: 'utf8', timeout: 20_000 },
    );
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('checking r: 3/3 units');
    expect(result.stdout).toContain('would unlock 3 unit(s)');
  });
});
