import { execFileSync } from 'node:child_process';
import { readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import type { Identity } from '../../src/remote/identity.js';
import { IndexStore } from '../../src/index/store.js';
import { loadProven } from '../../src/protect/proven-file.js';
import { ProvenBackups } from '../../src/protect/proven.js';
import { reconcileFolder } from '../../src/protect/reconcile.js';
import { startDaemon } from '../support/daemon.js';
import { tempRemote } from '../support/remote.js';
import { remoteContextOf } from '../support/remote-context.js';

const id = (ctimeNs: string): Identity => ({ dev: '1', ino: '2', size: '3', mtimeNs: '4', ctimeNs });

describe('proven backups', () => {
  it('holds a proof only while the json keeps the identity it had, and survives a round trip through its file format', () => {
    const proven = new ProvenBackups();
    proven.prove('/r/vm', 'a.json', id('10'));
    proven.prove('/r/vm', 'b.json', id('11'));
    expect(proven.isProven('/r/vm', 'a.json', id('10'))).toBe(true);
    expect(proven.isProven('/r/vm', 'a.json', id('12'))).toBe(false);
    expect(proven.isProven('/r/other', 'a.json', id('10'))).toBe(false);
    expect(proven.takeChanged()).toBe(true);
    expect(proven.takeChanged()).toBe(false);
    const copy = ProvenBackups.parse(proven.serialize());
    expect(copy.isProven('/r/vm', 'b.json', id('11'))).toBe(true);
    copy.retainOnly('/r/vm', ['b.json']);
    expect(copy.isProven('/r/vm', 'a.json', id('10'))).toBe(false);
    expect(copy.size).toBe(1);
    copy.forgetFolder('/r/vm');
    expect(copy.size).toBe(0);
    expect(ProvenBackups.parse('{"version":1,"folders":').size).toBe(0);
    expect(ProvenBackups.parse('{"version":2,"folders":{"/r/vm":{"a.json":"1:2:10"}}}').size).toBe(0);
  });

  it('lets a reconcile skip a proven backup, while a full one still finds a disk unlocked behind its untouched json', async () => {
    const remote = await tempRemote();
    const backup = await writeVmBackup(remote.root, { datetime: xoDatetime(Date.now()) });
    const { daemon } = await startDaemon(remote);
    await daemon.stop();
    const disk = backup.units.find((u) => u.endsWith('.vhd'))!;
    execFileSync('chattr', ['-i', disk]);
    const index = new IndexStore(remote.indexPath, 'r');
    const proven = await loadProven(index.folder);
    const folder = {
      remote: remoteContextOf(remote.root, index),
      kind: 'vm' as const,
      path: path.dirname(backup.label),
    };
    const options = { now: Date.now(), jsonSettleMs: 0, proven };
    expect((await reconcileFolder(folder, options)).requests).toEqual([]);
    expect((await reconcileFolder(folder, { ...options, full: true })).requests.map((r) => r.unit)).toEqual([disk]);
    // Without a memory of proofs, every backup is looked at.
    expect((await reconcileFolder(folder, { now: Date.now(), jsonSettleMs: 0 })).requests.map((r) => r.unit)).toEqual([
      disk,
    ]);
  });

  it('proves nothing of a backup whose json names a disk that is missing, so the disk is looked at when it appears', async () => {
    const remote = await tempRemote();
    const whole = await writeVmBackup(remote.root, { vm: 'vm-a', datetime: xoDatetime(Date.now()) });
    const partial = await writeVmBackup(remote.root, { vm: 'vm-b', datetime: xoDatetime(Date.now()) });
    const disk = partial.units.find((u) => u.endsWith('.vhd'))!;
    await rename(disk, `${disk}.away`);
    const { daemon } = await startDaemon(remote, { watch: false });
    await daemon.stop();
    const saved = await readFile(path.join(remote.indexPath, 'proven-r.json'), 'utf8');
    expect(saved).toContain(path.basename(whole.label));
    expect(saved).not.toContain(path.dirname(partial.label));
    await rename(`${disk}.away`, disk);
    const index = new IndexStore(remote.indexPath, 'r');
    const folder = {
      remote: remoteContextOf(remote.root, index),
      kind: 'vm' as const,
      path: path.dirname(partial.label),
    };
    expect(
      (
        await reconcileFolder(folder, { now: Date.now(), jsonSettleMs: 0, proven: await loadProven(index.folder) })
      ).requests.map((r) => r.unit),
    ).toEqual([disk]);
  });
});
