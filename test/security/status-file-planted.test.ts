import { execFileSync } from 'node:child_process';
import { lstat, mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import type { DaemonStatus } from '../../src/status/daemon-status.js';
import { asAttacker, handRemoteToAttacker } from '../support/attacker.js';
import { startDaemon, type LogLine, type RunningDaemon } from '../support/daemon.js';
import { allImmutable, isImmutable, tempRemote, waitFor, type TestRemote } from '../support/remote.js';

// immutability.json is written at the root XO's user writes to: whatever that user plants at its name, or a set-up
// file the daemon cannot lock, must never keep the daemon down nor leave a backup unlocked (docs/security.md,
// "Planted status file"). Each test failed before the fix: the start threw STATUS_FILE_FAILED, or the new remote was
// never activated.

// A remote XO has written to (so the daemon writes its file at start), handed to the attacker.
async function usedRemote(setUp?: (root: string) => Promise<void>): Promise<TestRemote> {
  const remote = await tempRemote();
  await setUp?.(remote.root);
  await mkdir(path.join(remote.root, 'xo-vm-backups'));
  await writeFile(path.join(remote.root, 'xo-vm-backups', '.keep'), '');
  await handRemoteToAttacker(remote);
  return remote;
}

async function startsAnyway(remote: TestRemote, healthCheckEveryMs?: number): Promise<RunningDaemon> {
  const started = await startDaemon(remote, healthCheckEveryMs === undefined ? {} : { healthCheckEveryMs }).catch(
    (error: unknown) => (error as Error).message,
  );
  expect(started).not.toBeTypeOf('string');
  return started as RunningDaemon;
}

async function expectLockedMarker(remote: TestRemote): Promise<void> {
  const marker = path.join(remote.root, 'immutability.json');
  expect((await lstat(marker)).isFile()).toBe(true);
  expect(isImmutable(marker)).toBe(true);
  expect(JSON.parse(await readFile(marker, 'utf8'))).toMatchObject({ immutable: true, daemon: 'xo-immutable-backups' });
}

// The one dot name the planted entry was moved to, as the security warning names it.
async function movedAside(remote: TestRemote, logs: readonly LogLine[]): Promise<string> {
  const names = (await readdir(remote.root)).filter((n) => n.startsWith('.immutability.json.planted-'));
  expect(names).toHaveLength(1);
  expect(names[0]).toMatch(/^\.immutability\.json\.planted-\d{8}T\d{6}Z(-[0-9a-f]{8})?$/);
  const moved = path.join(remote.root, names[0]!);
  const warning = logs.find((l) => l.security === true && l.movedTo === moved);
  expect(warning?.path).toBe(path.join(remote.root, 'immutability.json'));
  expect(warning?.msg).toContain('find out who can write to the remote');
  return moved;
}

// lsattr fails on a missing path: immutability.json is gone for a moment between the move aside and the new file.
async function isLockedFile(file: string): Promise<boolean> {
  const stats = await lstat(file).catch(() => undefined);
  return stats?.isFile() === true && isImmutable(file);
}

async function backupIsLocked(remote: TestRemote): Promise<void> {
  const backup = await writeVmBackup(remote.root, { datetime: xoDatetime(Date.now()) });
  await waitFor(() => allImmutable(backup.units), 'the backup to be locked');
}

describe('immutability.json planted before a start', () => {
  it('as a folder: moved aside with what it holds, the daemon starts and locks the backups XO writes', async () => {
    const remote = await usedRemote();
    const planted = path.join(remote.root, 'immutability.json');
    asAttacker('mkdir', ['-p', path.join(planted, 'x')]);
    asAttacker('sh', ['-c', 'printf planted > "$1"', 'sh', path.join(planted, 'x', 'note')]);
    const { logs } = await startsAnyway(remote);
    await backupIsLocked(remote);
    await expectLockedMarker(remote);
    const moved = await movedAside(remote, logs);
    expect(await readFile(path.join(moved, 'x', 'note'), 'utf8')).toBe('planted');
    expect(logs.find((l) => l.movedTo === moved)?.found).toBe('a directory');
  });

  it('as a symbolic link: the link itself moved aside, its target untouched', async () => {
    const remote = await usedRemote();
    // What a root process following the link would overwrite, outside the remote.
    const outside = path.join(remote.base, 'outside.json');
    await writeFile(outside, 'not the remote\n');
    asAttacker('ln', ['-s', outside, path.join(remote.root, 'immutability.json')]);
    const { logs } = await startsAnyway(remote);
    await backupIsLocked(remote);
    await expectLockedMarker(remote);
    const moved = await movedAside(remote, logs);
    expect((await lstat(moved)).isSymbolicLink()).toBe(true);
    expect(await readlink(moved)).toBe(outside);
    expect(await readFile(outside, 'utf8')).toBe('not the remote\n');
    expect(isImmutable(outside)).toBe(false);
  });

  it('as a file with a second hard link: moved aside, the other name neither written nor locked', async () => {
    const remote = await usedRemote();
    const other = path.join(remote.root, 'xo-vm-backups', 'other-name');
    asAttacker('sh', ['-c', 'printf planted > "$1"', 'sh', other]);
    asAttacker('ln', [other, path.join(remote.root, 'immutability.json')]);
    const { logs } = await startsAnyway(remote);
    await backupIsLocked(remote);
    await expectLockedMarker(remote);
    expect((await lstat(await movedAside(remote, logs))).nlink).toBe(2);
    expect(await readFile(other, 'utf8')).toBe('planted');
    expect(isImmutable(other)).toBe(false);
  });

  it('as a FIFO: moved aside, never opened', async () => {
    const remote = await usedRemote();
    asAttacker('mkfifo', [path.join(remote.root, 'immutability.json')]);
    const { logs } = await startsAnyway(remote);
    await backupIsLocked(remote);
    await expectLockedMarker(remote);
    expect((await lstat(await movedAside(remote, logs))).isFIFO()).toBe(true);
  });
});

describe('immutability.json planted on a new remote the daemon waits on', () => {
  it('is moved aside, and the first backup XO writes there is locked', async () => {
    const remote = await tempRemote();
    await handRemoteToAttacker(remote);
    const { logs } = await startDaemon(remote, { healthCheckEveryMs: 200 });
    // The attacker gets there before XO.
    asAttacker('mkdir', ['-p', path.join(remote.root, 'immutability.json', 'x')]);
    await backupIsLocked(remote);
    await waitFor(() => logs.some((l) => l.security === true && l.movedTo !== undefined), 'the security warning');
    await expectLockedMarker(remote);
    expect((await lstat(path.join(await movedAside(remote, logs), 'x'))).isDirectory()).toBe(true);
  });
});

async function daemonStatus(remote: TestRemote): Promise<DaemonStatus | undefined> {
  const text = await readFile(path.join(remote.indexPath, 'status.json'), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : (JSON.parse(text) as DaemonStatus);
}

// Two status.json heartbeats (one is written after every health check): the health check has run since.
async function twoHealthChecks(remote: TestRemote): Promise<void> {
  for (let check = 0; check < 2; check++) {
    const seen = (await daemonStatus(remote))?.heartbeat;
    await waitFor(async () => (await daemonStatus(remote))?.heartbeat !== seen, 'the next health check');
  }
}

function statusFileErrors(logs: readonly LogLine[]): LogLine[] {
  return logs.filter((l) => l.level === 'error' && l.code === 'STATUS_FILE_FAILED');
}

describe('status files the daemon cannot write or lock', () => {
  it('an encryption.json with a second hard link: locked all the same and said, backups locked', async () => {
    // XO's files, set up before the daemon ever ran.
    const remote = await usedRemote(async (root) => {
      await writeFile(path.join(root, 'encryption.json'), '{"algorithm":"none"}');
      await writeFile(path.join(root, 'metadata.json'), '{}');
    });
    const encryption = path.join(remote.root, 'encryption.json');
    const second = path.join(remote.root, 'xo-vm-backups', 'second-name');
    asAttacker('ln', [encryption, second]);
    const { logs } = await startsAnyway(remote, 200);
    // Left unlocked, deleting it would make every backup of an encrypted remote unreachable: locked, and said.
    expect(isImmutable(encryption)).toBe(true);
    expect(statusFileErrors(logs)).toEqual([]);
    expect(logs.filter((l) => l.security === true && l.path === encryption).map((l) => l.msg)).toEqual([
      expect.stringMatching(/locked, but .*2 hard links/),
    ]);
    await backupIsLocked(remote);
    await twoHealthChecks(remote);
    expect((await daemonStatus(remote))?.remotes[0]?.healthy).toBe(true);
    await expectLockedMarker(remote);
  });

  it('immutability.json that cannot be moved aside: not paused, backups locked, written once it can be', async () => {
    const remote = await usedRemote();
    const planted = path.join(remote.root, 'immutability.json');
    asAttacker('mkdir', [planted]);
    // Out of the attacker's reach, it stands for any write that fails: the daemon's rename gets EPERM.
    execFileSync('chattr', ['+i', planted]);
    const { logs } = await startsAnyway(remote, 200);
    expect(statusFileErrors(logs)[0]?.msg).toContain('cannot be moved aside');
    await backupIsLocked(remote);
    await twoHealthChecks(remote);
    expect(statusFileErrors(logs)).toHaveLength(1);
    expect((await daemonStatus(remote))?.remotes[0]).toMatchObject({ healthy: true });
    expect(logs.some((l) => l.msg.includes('is unavailable'))).toBe(false);

    execFileSync('chattr', ['-i', planted]);
    await waitFor(() => isLockedFile(planted), 'immutability.json to be written at a health check');
    await expectLockedMarker(remote);
    await movedAside(remote, logs);
    await twoHealthChecks(remote);
    expect(
      logs.filter((l) => l.level === 'info' && l.msg.includes('immutability.json written and locked')),
    ).toHaveLength(1);
  });
});
