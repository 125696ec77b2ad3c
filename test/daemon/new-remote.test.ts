import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import type { DaemonStatus } from '../../src/status/daemon-status.js';
import { startDaemon } from '../support/daemon.js';
import { allImmutable, isImmutable, tempRemote, waitFor } from '../support/remote.js';

// What XO's encrypted set-up accepts at a root ("Remote directory must be empty." otherwise): @xen-orchestra/fs
// abstract.js #canWriteMetadata. docs/xo-remote-layout.md.
function acceptableToXoEncryptionSetup(names: string[]): boolean {
  return names.every((name) => name.startsWith('.') || name === 'encryption.json' || name === 'metadata.json');
}

async function daemonStatus(indexPath: string): Promise<DaemonStatus> {
  return JSON.parse(await readFile(path.join(indexPath, 'status.json'), 'utf8')) as DaemonStatus;
}

describe('a new remote XO has not written to yet', () => {
  it('gets nothing at its root until XO writes there, then is protected like any other', async () => {
    const remote = await tempRemote();
    await writeFile(path.join(remote.root, '.keeper_abc'), '');
    const { logs } = await startDaemon(remote, { healthCheckEveryMs: 100, config: { jsonSettleMs: 300 } });

    expect(acceptableToXoEncryptionSetup(await readdir(remote.root))).toBe(true);
    expect(logs.some((l) => l.level === 'warn' && l.msg.includes('remote r is new'))).toBe(true);
    await waitFor(async () => (await daemonStatus(remote.indexPath)).remotes[0]?.waitingForXo === true, 'status');
    expect((await daemonStatus(remote.indexPath)).remotes[0]).toMatchObject({ healthy: true, waitingForXo: true });

    // XO sets the remote up with encryption (its two files), then writes a backup whose json is ciphertext.
    await writeFile(path.join(remote.root, 'encryption.json'), '{"algorithm":"chacha20-poly1305"}');
    await writeFile(path.join(remote.root, 'metadata.json'), Buffer.from('not json: ciphertext'));
    const backup = await writeVmBackup(remote.root, { datetime: xoDatetime(Date.now()), encrypted: true });

    const marker = path.join(remote.root, 'immutability.json');
    // The marker is written once the daemon has seen XO's files: it may not be there yet.
    await waitFor(
      () => existsSync(marker) && allImmutable([marker, ...backup.units]),
      'the marker and the backup to be locked',
    );
    // Without them XO refuses to open the remote ("Remote directory must be empty."): locked with the marker.
    expect(allImmutable(['encryption.json', 'metadata.json'].map((name) => path.join(remote.root, name)))).toBe(true);
    expect(logs.some((l) => l.msg.includes('XO has written to remote r') && l.encrypted === true)).toBe(true);
    await waitFor(async () => (await daemonStatus(remote.indexPath)).remotes[0]?.waitingForXo !== true, 'status');
    expect((await daemonStatus(remote.indexPath)).remotes[0]).toMatchObject({
      healthy: true,
      protectedByNameOnly: true,
    });
  });

  it('is protected as soon as XO writes a backup, without waiting for a health check', async () => {
    const remote = await tempRemote();
    await startDaemon(remote, { healthCheckEveryMs: 3_600_000 });
    expect(await readdir(remote.root)).toEqual([]);
    const backup = await writeVmBackup(remote.root, { datetime: xoDatetime(Date.now()) });
    await waitFor(() => allImmutable(backup.units), 'the backup to be locked');
    expect(isImmutable(path.join(remote.root, 'immutability.json'))).toBe(true);
  });
});

describe('a hostile root', () => {
  it('still gets its backups locked when encryption.json is a FIFO (read without blocking, as encrypted)', async () => {
    const remote = await tempRemote();
    execFileSync('mkfifo', [path.join(remote.root, 'encryption.json')]);
    await writeFile(path.join(remote.root, 'metadata.json'), 'ciphertext');
    await startDaemon(remote, { config: { jsonSettleMs: 300 } });
    const backup = await writeVmBackup(remote.root, { datetime: xoDatetime(Date.now()), encrypted: true });
    await waitFor(() => allImmutable(backup.units), 'the backup to be locked');
  });
});
