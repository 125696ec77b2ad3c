import { spawn, spawnSync } from 'node:child_process';
import { chmod, mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { LOCK_FILE, takeInstanceLock } from '../../src/lock/instance-lock.js';
import { readDaemonStatus } from '../../src/status/daemon-status.js';
import { runCli } from '../support/cli.js';
import { spawnProtect } from '../support/daemon.js';
import {
  allImmutable,
  stopBeforeCleanup,
  tempRemote,
  waitFor,
  writeConfigFile,
  type TestRemote,
} from '../support/remote.js';

const BIN = path.resolve('bin/xo-immutable-backups.js');

interface Exited {
  code: number | null;
  stderr: string;
}

// A daemon expected to be refused: its exit is awaited by polling, so a daemon that starts anyway fails the test
// (it is killed in the cleanup) instead of hanging it.
function spawnRefusable(config: string): { exited: () => Exited | undefined } {
  const child = spawn(process.execPath, [BIN, 'protect', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let result: Exited | undefined;
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const closed = new Promise<void>((resolve) =>
    child.on('close', (code) => {
      result = { code, stderr };
      resolve();
    }),
  );
  stopBeforeCleanup(async () => {
    child.kill('SIGKILL');
    await closed;
  });
  return { exited: () => result };
}

async function refused(config: string): Promise<Exited> {
  const second = spawnRefusable(config);
  await waitFor(() => second.exited() !== undefined, 'the second daemon to exit');
  return second.exited()!;
}

// The daemon in its own process, up once it wrote its first status.
async function runningDaemon(remote: TestRemote, config: string): Promise<ReturnType<typeof spawnProtect>> {
  const daemon = spawnProtect(config);
  await waitFor(
    async () => (await readDaemonStatus(remote.indexPath))?.pid === daemon.child.pid,
    'the daemon to write its status',
  );
  return daemon;
}

describe('one daemon per index', () => {
  it('refuses a second daemon on the same config, naming the first, which goes on unaffected', async () => {
    const remote = await tempRemote();
    const config = await writeConfigFile(remote);
    const first = await runningDaemon(remote, config);
    const pid = first.child.pid!;

    const second = await refused(config);
    expect(second.code).toBe(3);
    expect(second.stderr).toContain('INDEX_LOCKED');
    expect(second.stderr).toContain(`Another daemon (pid ${pid}`);
    expect(second.stderr).toContain('systemctl stop xo-immutable-backups');
    expect(second.stderr).toContain(`kill ${pid}`);

    // Its heartbeat is still the first's, and `status` says it runs.
    const status = await readDaemonStatus(remote.indexPath);
    expect(status?.pid).toBe(pid);
    expect(status?.stoppedAt).toBeUndefined();
    const report = await runCli(['status', '--json', '--config', config]);
    expect(JSON.parse(report.stdout)).toMatchObject({ daemon: { running: true, pid } });
    // And it still protects: a backup written now is locked.
    const backup = await writeVmBackup(remote.root, { datetime: xoDatetime(Date.now()) });
    await waitFor(() => allImmutable(backup.units), 'the first daemon to lock a new backup');
    expect(first.child.exitCode).toBeNull();
  });

  it('is free again when the daemon holding it is killed', async () => {
    const remote = await tempRemote();
    const config = await writeConfigFile(remote);
    const first = await runningDaemon(remote, config);
    first.child.kill('SIGKILL');
    await first.exited;
    const next = await runningDaemon(remote, config);
    expect(next.child.exitCode).toBeNull();
  });
});

describe('commands and the daemon take turns through the lock', () => {
  it('refuses lift and rebuild-index beside a daemon in another process, naming its pid', async () => {
    const remote = await tempRemote();
    const config = await writeConfigFile(remote);
    const backup = await writeVmBackup(remote.root, { datetime: xoDatetime(Date.now()) });
    const daemon = await runningDaemon(remote, config);
    await waitFor(() => allImmutable(backup.units), 'the backup to be locked');
    for (const command of [['lift'], ['rebuild-index']]) {
      const result = await runCli([...command, '--config', config]);
      expect(result.status, command[0]).toBe(1);
      expect(result.stderr).toContain(`DAEMON_RUNNING`);
      expect(result.stderr).toContain(`pid ${daemon.child.pid}`);
    }
    expect((await readDaemonStatus(remote.indexPath))?.pid).toBe(daemon.child.pid);
    expect(allImmutable(backup.units)).toBe(true);
  });

  it('refuses a daemon, and another command, while a command holds the index; both run once it ends', async () => {
    const remote = await tempRemote();
    const config = await writeConfigFile(remote);
    // What `lift` takes for its run, held here so that it lasts as long as the test needs.
    const attempt = await takeInstanceLock(remote.indexPath, 'lift');
    if (!('lock' in attempt)) throw new Error('the index should be free');

    const daemon = await refused(config);
    expect(daemon.code).toBe(3);
    expect(daemon.stderr).toContain(`\`lift\` (pid ${process.pid}`);
    const rebuild = await runCli(['rebuild-index', '--config', config]);
    expect(rebuild.status).toBe(1);
    expect(rebuild.stderr).toContain('INDEX_BUSY');
    expect(await readDaemonStatus(remote.indexPath)).toBeUndefined();

    attempt.lock.release();
    expect((await runCli(['rebuild-index', '--config', config])).status).toBe(0);
    await runningDaemon(remote, config);
  });
});

describe('a daemon of an earlier release, which takes no lock', () => {
  it('still keeps lift and rebuild-index away while its heartbeat is fresh', async () => {
    const remote = await tempRemote();
    const config = await writeConfigFile(remote);
    // A live process other than this one, named by a fresh status.json as an older daemon would write it.
    const older = spawn('sleep', ['600'], { stdio: 'ignore' });
    const gone = new Promise((resolve) => older.on('exit', resolve));
    stopBeforeCleanup(async () => {
      older.kill('SIGKILL');
      await gone;
    });
    const now = new Date().toISOString();
    await mkdir(remote.indexPath, { recursive: true, mode: 0o700 });
    await writeFile(
      path.join(remote.indexPath, 'status.json'),
      JSON.stringify({ version: 1, pid: older.pid, startedAt: now, heartbeat: now, remotes: [], lifting: {} }),
    );
    for (const command of ['lift', 'rebuild-index']) {
      const result = await runCli([command, '--config', config]);
      expect(result.status, command).toBe(1);
      expect(result.stderr).toContain(`DAEMON_RUNNING`);
      expect(result.stderr).toContain(`pid ${older.pid}`);
    }
  });
});

describe('commands that write the index check their rights first', () => {
  it('rebuild-index run as nobody refuses before it creates anything', async () => {
    const remote = await tempRemote();
    const config = await writeConfigFile(remote);
    // nobody can read the config and the remote, and could create indexPath: only the capability check stops it.
    await chmod(remote.base, 0o1777);
    await chmod(config, 0o644);
    const result = spawnSync(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, BIN, 'rebuild-index', '--config', config],
      { encoding: 'utf8' },
    );
    expect(result.status, result.stderr).toBe(3);
    expect(result.stderr).toContain('MISSING_CAPABILITY');
    expect(result.stderr).toContain('run it as root');
    expect(await readdir(remote.base)).not.toContain(path.basename(remote.indexPath));
  });

  it('rebuild-index run as nobody beside an existing index leaves it root-owned and untouched', async () => {
    const remote = await tempRemote();
    const config = await writeConfigFile(remote);
    expect((await runCli(['rebuild-index', '--config', config])).status).toBe(0);
    await chmod(remote.base, 0o755);
    await chmod(config, 0o644);
    const before = await readdir(remote.indexPath);
    const result = spawnSync(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, BIN, 'rebuild-index', '--config', config],
      { encoding: 'utf8' },
    );
    expect(result.status, result.stderr).toBe(3);
    expect(await readdir(remote.indexPath)).toEqual(before);
    expect((await stat(path.join(remote.indexPath, LOCK_FILE))).uid).toBe(0);
  });
});
