import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { appendFile, link, lstat, mkdir, readFile, rename, symlink, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  writeConfigBackup,
  writePoolBackup,
  writeVmBackup,
  xoDatetime,
  type WrittenBackup,
} from '../../src/demo/sample-remote.js';
import { entryName, type IndexEntry } from '../../src/index/entry.js';
import { IndexStore } from '../../src/index/store.js';
import { utcDay } from '../../src/remote/datetime.js';
import { windowMsOf } from '../../src/remote/model.js';
import { DAY, startDaemon } from '../support/daemon.js';
import { allImmutable, isImmutable, tempFolder, tempRemote, waitFor } from '../support/remote.js';

// What an attacker holding XO's credentials would try on each unit.
async function expectRefusesChanges(unit: string): Promise<void> {
  if ((await lstat(unit)).isDirectory()) {
    await expect(writeFile(path.join(unit, 'planted'), 'x'), unit).rejects.toMatchObject({ code: 'EPERM' });
  } else {
    await expect(appendFile(unit, 'ransom'), unit).rejects.toMatchObject({ code: 'EPERM' });
    await expect(unlink(unit), unit).rejects.toMatchObject({ code: 'EPERM' });
  }
}

describe('protect daemon on ext4 with real chattr', () => {
  it('locks backups of all three kinds written while it runs, and writes and unlinks then fail', async () => {
    const remote = await tempRemote();
    await startDaemon(remote);
    const dt = xoDatetime(Date.now());
    const backups = [
      await writeVmBackup(remote.root, {
        datetime: dt,
        disks: [{ type: 'flat' }, { type: 'vhd-directory', blocks: 5 }, { type: 'legacy-vhd-directory' }],
      }),
      await writeVmBackup(remote.root, { datetime: dt, xva: true, disks: [] }),
      await writeConfigBackup(remote.root, 'schedule-1', dt),
      await writePoolBackup(remote.root, 'schedule-2', 'pool-1', dt),
    ];
    const units = backups.flatMap((b) => b.units);
    await waitFor(() => allImmutable(units), 'every unit to be immutable');
    for (const unit of units) await expectRefusesChanges(unit);
    // A VHD directory is one unit, locked with every block in it.
    const vhdDirectory = backups[0]!.units.find((u) => u.endsWith(`data/${dt}.vhd`))!;
    await expect(unlink(path.join(vhdDirectory, 'blocks', '0', '0'))).rejects.toMatchObject({ code: 'EPERM' });
  });

  it('locks at start what was written while it was stopped, before start() returns', async () => {
    const remote = await tempRemote();
    const waiting = [
      await writeVmBackup(remote.root, {
        datetime: xoDatetime(Date.now() - 2 * DAY),
        disks: [{ type: 'flat' }, { type: 'vhd-directory' }],
      }),
      await writeConfigBackup(remote.root, 's', xoDatetime(Date.now() - DAY)),
      await writePoolBackup(remote.root, 's', 'p', xoDatetime(Date.now() - DAY)),
    ];
    const { logs } = await startDaemon(remote);
    expect(allImmutable(waiting.flatMap((b) => b.units))).toBe(true);
    expect(logs.find((l) => l.msg.startsWith('protecting 1 remote'))).toMatchObject({ backupsLocked: 3 });
  });

  it('leaves mutable everything XO must keep writing and everything outside the three trees', async () => {
    const remote = await tempRemote();
    const r = remote.root;
    const dt = xoDatetime(Date.now());
    const vm = path.join(r, 'xo-vm-backups', 'vm-1');
    const mutable = [
      path.join(r, '1732000000000.test'),
      path.join(r, 'xo-vm-backups', '.queue', 'clean-vm', `${dt}.json`),
      path.join(r, 'xo-vm-backups', 'vm-1.lock', `${dt}.json`),
      path.join(r, 'elsewhere', `${dt}.json`),
      path.join(vm, `.${dt}.json`),
      path.join(vm, `.123.${dt}.xva`),
      path.join(vm, 'vdis', 'job', 'vdi', '.parent.merge.json'),
      path.join(r, 'xo-config-backups', 'schedule', 'not-a-date', 'metadata.json'),
    ];
    for (const file of mutable) {
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, '{}');
    }
    await startDaemon(remote);
    const backup = await writeVmBackup(r, { vm: 'vm-1', datetime: dt });
    await waitFor(() => allImmutable(backup.units), 'the real backup to be locked');
    for (const file of [...mutable, ...backup.neverLocked]) {
      expect(isImmutable(file), file).toBe(false);
      await appendFile(file, ' ');
    }
  });

  it('by name, does not lock a backup whose datetime is already older than the window (duration + slack)', async () => {
    const remote = await tempRemote();
    // All in one VM folder: once the fresh backup is locked, the folder was reconciled with the old ones in it.
    const old = await writeVmBackup(remote.root, { vm: 'vm', datetime: xoDatetime(Date.now() - 8 * DAY) });
    const byName = { id: 'r', root: remote.root, immutabilityDurationMs: 7 * DAY, rebuildIndexOnStart: false };
    await startDaemon(remote, { config: { remotes: [{ ...byName, windowStart: 'name' }] } });
    const lateOld = await writeVmBackup(remote.root, {
      vm: 'vm',
      datetime: xoDatetime(Date.now() - windowMsOf(7 * DAY) - 60_000),
    });
    const fresh = await writeVmBackup(remote.root, { vm: 'vm', datetime: xoDatetime(Date.now()) });
    await waitFor(() => allImmutable(fresh.units), 'the fresh backup to be locked');
    for (const unit of [...old.units, ...lateOld.units]) expect(isImmutable(unit), unit).toBe(false);
  });

  it('locks a VM folder created and filled at once, before its watch can exist', async () => {
    const remote = await tempRemote();
    await startDaemon(remote);
    const dt = xoDatetime(Date.now());
    const vdi = path.join(remote.root, 'xo-vm-backups', 'burst-vm', 'vdis', 'job', 'vdi');
    mkdirSync(vdi, { recursive: true });
    writeFileSync(path.join(vdi, `${dt}.vhd`), 'disk');
    writeFileSync(path.join(remote.root, 'xo-vm-backups', 'burst-vm', `${dt}.json`), '{"mode":"delta"}');
    await waitFor(
      () =>
        allImmutable([path.join(vdi, `${dt}.vhd`), path.join(remote.root, 'xo-vm-backups', 'burst-vm', `${dt}.json`)]),
      'the burst backup to be locked',
    );
  });

  it('locks backups in VM folders created one after another in a tree that did not exist at start', async () => {
    const remote = await tempRemote();
    await startDaemon(remote);
    const dt = xoDatetime(Date.now());
    // chokidar lists a new folder before watching it: folders made in that gap are found by the watcher's relisting.
    const backups: WrittenBackup[] = [];
    for (let i = 0; i < 5; i++) backups.push(await writeVmBackup(remote.root, { vm: `vm-${i}`, datetime: dt }));
    await waitFor(() => allImmutable(backups.flatMap((b) => b.units)), 'every backup to be locked', 20_000);
  });

  it('keeps locking when the VM backups folder is replaced by a new one, without waiting for a rescan', async () => {
    const remote = await tempRemote();
    const tree = path.join(remote.root, 'xo-vm-backups');
    await mkdir(tree);
    // The periodic rescan is an hour away here: only the watches can find these backups.
    await startDaemon(remote);
    // A new tree renamed over the old, empty one: the root still lists a folder of that name, so only the tree's own
    // watch can tell it was replaced.
    const staging = path.join(remote.root, 'staging');
    const ready = await writeVmBackup(staging, { vm: 'vm-a', datetime: xoDatetime(Date.now()) });
    await rename(path.join(staging, 'xo-vm-backups'), tree);
    const moved = ready.units.map((u) => path.join(tree, path.relative(path.join(staging, 'xo-vm-backups'), u)));
    await waitFor(() => allImmutable(moved), 'the backup the new tree came with to be locked', 20_000);
    const later = await writeVmBackup(remote.root, { vm: 'vm-b', datetime: xoDatetime(Date.now()) });
    await waitFor(() => allImmutable(later.units), 'a backup written into the new tree to be locked', 20_000);
  });

  it('waits for a json that is still being written, and locks it once it is whole', async () => {
    const remote = await tempRemote();
    // A long settle time: only the json becoming whole may trigger the lock here, never its staying unchanged.
    await startDaemon(remote, { config: { jsonSettleMs: 600_000 } });
    const dt = xoDatetime(Date.now());
    const folder = path.join(remote.root, 'xo-vm-backups', 'slow-vm');
    await mkdir(folder, { recursive: true });
    const json = path.join(folder, `${dt}.json`);
    await writeFile(json, '{"mode":"delta","vhds":');
    // A backup in another folder acts as a barrier: inotify delivers in order, so once it is locked the partial json was seen.
    const barrier = await writeVmBackup(remote.root, { datetime: dt });
    await waitFor(() => allImmutable(barrier.units), 'the barrier backup');
    expect(isImmutable(json)).toBe(false);
    await appendFile(json, '{}}');
    await waitFor(() => isImmutable(json), 'the completed json to be locked');
  });

  it('locks the backups of an encrypted remote once their ciphertext json has settled', async () => {
    const remote = await tempRemote();
    await writeFile(path.join(remote.root, 'encryption.json'), '{"algorithm":"aes-256-gcm"}');
    await startDaemon(remote, { config: { jsonSettleMs: 300 } });
    const backup = await writeVmBackup(remote.root, {
      datetime: xoDatetime(Date.now()),
      encrypted: true,
      disks: [{ type: 'vhd-directory' }],
    });
    await waitFor(() => allImmutable(backup.units), 'the encrypted backup to be locked');
  });

  it("locks XO's set-up files at the root of an encrypted remote: without them XO cannot open it", async () => {
    const remote = await tempRemote();
    const setup = ['encryption.json', 'metadata.json'].map((name) => path.join(remote.root, name));
    await writeFile(setup[0]!, '{"algorithm":"chacha20-poly1305"}');
    await writeFile(setup[1]!, 'ciphertext');
    await writeVmBackup(remote.root, { datetime: xoDatetime(Date.now()), encrypted: true });
    await startDaemon(remote, { config: { jsonSettleMs: 300 } });
    expect(allImmutable(setup)).toBe(true);
  });

  it('locks every VHD directory of an encrypted remote by name, a merged base with an older name included; not an orphan', async () => {
    const remote = await tempRemote();
    await writeFile(path.join(remote.root, 'encryption.json'), '{"algorithm":"chacha20-poly1305"}');
    await writeFile(path.join(remote.root, 'metadata.json'), 'ciphertext');
    const now = Date.now();
    const head = await writeVmBackup(remote.root, {
      datetime: xoDatetime(now - 3_600_000),
      encrypted: true,
      disks: [{ type: 'vhd-directory' }],
    });
    // XO merged an older backup into its base and removed the merge target's own directory: the base keeps the older
    // name, and the target's alias (ciphertext) points at it. No alias is named after it any more.
    const own = head.units.find((u) => u.endsWith(`${xoDatetime(now - 3_600_000)}.vhd`))!;
    const data = path.dirname(own);
    const base = path.join(data, `${xoDatetime(now - 3 * 3_600_000)}.vhd`);
    await rename(own, base);
    // A finished directory newer than every alias without a directory of its own: an orphan XO's cleanVm deletes.
    const orphan = path.join(data, `${xoDatetime(now - 1_800_000)}.vhd`);
    await mkdir(path.join(orphan, 'blocks', '0'), { recursive: true });
    for (const part of ['header', 'footer', 'bat', 'chunk-filters.json', 'blocks/0/0'])
      await writeFile(path.join(orphan, part), part);
    const { logs } = await startDaemon(remote, { config: { jsonSettleMs: 300 } });
    const units = [...head.units.filter((u) => u !== own), base];
    await waitFor(() => allImmutable(units), 'the encrypted backup and its base to be locked');
    expect(isImmutable(orphan), 'the orphan is locked').toBe(false);
    expect(logs.filter((l) => String(l.msg).startsWith('not locking'))).toEqual([]);
  });

  it('keeps a locked merged base claimed on an encrypted remote when a directory is planted under its alias', async () => {
    const remote = await tempRemote();
    await writeFile(path.join(remote.root, 'encryption.json'), '{"algorithm":"chacha20-poly1305"}');
    await writeFile(path.join(remote.root, 'metadata.json'), 'ciphertext');
    const now = Date.now();
    const headTime = xoDatetime(now - 2 * 3_600_000);
    const head = await writeVmBackup(remote.root, {
      datetime: headTime,
      encrypted: true,
      disks: [{ type: 'vhd-directory' }],
    });
    // As XO's merge leaves it: the head's alias points at the base, which keeps an older name.
    const own = head.units.find((u) => u.endsWith(`data/${headTime}.vhd`))!;
    const base = path.join(path.dirname(own), `${xoDatetime(now - 3 * 3_600_000)}.vhd`);
    await rename(own, base);
    await startDaemon(remote, { config: { jsonSettleMs: 300 } });
    await waitFor(
      () => allImmutable([...head.units.filter((u) => u !== own), base]),
      'the head and its base to be locked',
    );
    // The attacker gives the head's alias a directory of its own name: by names alone, the base now looks orphaned.
    await mkdir(path.join(own, 'blocks', '0'), { recursive: true });
    for (const part of ['header', 'footer', 'bat', 'chunk-filters.json', 'blocks/0/0'])
      await writeFile(path.join(own, part), part);
    // XO's next delta builds on the base, in the same VDI folder: it must keep the base locked for its own window.
    const nextTime = xoDatetime(now - 3_600_000);
    const vdiFolder = path.dirname(path.dirname(own));
    const nextDir = path.join(vdiFolder, 'data', `${nextTime}.vhd`);
    await mkdir(path.join(nextDir, 'blocks', '0'), { recursive: true });
    for (const part of ['header', 'footer', 'bat', 'chunk-filters.json', 'blocks/0/0'])
      await writeFile(path.join(nextDir, part), part);
    await writeFile(path.join(vdiFolder, `${nextTime}.alias.vhd`), 'ciphertext');
    await writeFile(path.join(path.dirname(head.label), `${nextTime}.json`), 'ciphertext');
    const next = {
      units: [
        nextDir,
        path.join(vdiFolder, `${nextTime}.alias.vhd`),
        path.join(path.dirname(head.label), `${nextTime}.json`),
      ],
    };
    await waitFor(() => allImmutable(next.units), 'the next backup to be locked');
    const index = new IndexStore(remote.indexPath, 'r');
    const governing = async (): Promise<number> => {
      const datetimes: number[] = [];
      for (const day of await index.listDays())
        for (const { entry } of await index.readDay(day))
          if (entry?.path === base) datetimes.push(Date.parse(entry.backupDatetime));
      return Math.max(...datetimes);
    };
    // Re-dated by the next backup (at or after its datetime), not left with the head's. The re-dated entry is written
    // when the batch completes, after the next backup's own units are locked: polled, not read once.
    const nextInstant = Math.floor((now - 3_600_000) / 1000) * 1000;
    await waitFor(async () => (await governing()) >= nextInstant, "the base's window to follow the next backup");
  });

  it('restarts idempotently: what is locked and unchanged is neither locked nor indexed again', async () => {
    const remote = await tempRemote();
    const backup = await writeVmBackup(remote.root, {
      datetime: xoDatetime(Date.now()),
      disks: [{ type: 'flat' }, { type: 'vhd-directory' }],
    });
    const first = await startDaemon(remote);
    await first.daemon.stop();
    const ctimes = await Promise.all(backup.units.map(async (u) => (await lstat(u, { bigint: true })).ctimeNs));
    const second = await startDaemon(remote);
    expect(second.logs.filter((l) => l.msg.startsWith('locked '))).toEqual([]);
    expect(await Promise.all(backup.units.map(async (u) => (await lstat(u, { bigint: true })).ctimeNs))).toEqual(
      ctimes,
    );
    expect(allImmutable(backup.units)).toBe(true);
  });

  it('locks again a unit someone unlocked while the daemon was stopped: a json at start-up, a disk behind an untouched json by the full proof that follows', async () => {
    const remote = await tempRemote();
    const backup = await writeVmBackup(remote.root, { datetime: xoDatetime(Date.now()) });
    const first = await startDaemon(remote);
    await first.daemon.stop();
    // What the catch-up may skip at the next start: this backup, proven locked.
    expect(await readFile(path.join(remote.indexPath, 'proven-r.json'), 'utf8')).toContain(path.basename(backup.label));
    const disk = backup.units.find((u) => u.endsWith('.vhd'))!;
    execFileSync('chattr', ['-i', disk]);
    const running = await startDaemon(remote);
    await waitFor(() => isImmutable(disk), 'the full proof to lock the disk again');

    const second = await writeVmBackup(remote.root, { datetime: xoDatetime(Date.now() + 1000) });
    await waitFor(() => allImmutable(second.units), 'the second backup to be locked');
    const json = second.units.find((u) => u.endsWith('.json'))!;
    await running.daemon.stop();
    execFileSync('chattr', ['-i', json]);
    await startDaemon(remote);
    expect(isImmutable(json)).toBe(true);
  });

  it('writes one index entry per unit, before locking, with the backup day and the identity after locking', async () => {
    const remote = await tempRemote();
    const instant =
      Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate()) - DAY + 1000;
    const backup = await writeVmBackup(remote.root, {
      datetime: xoDatetime(instant),
      disks: [{ type: 'flat' }, { type: 'vhd-directory' }],
    });
    await startDaemon(remote);
    for (const unit of backup.units) {
      const file = path.join(remote.indexPath, 'r', utcDay(instant), entryName(unit));
      const entry = JSON.parse(await readFile(file, 'utf8')) as IndexEntry;
      const stats = await lstat(unit, { bigint: true });
      expect(entry).toMatchObject({
        state: 'locked',
        remote: 'r',
        path: unit,
        day: utcDay(instant),
        backup: backup.label,
      });
      expect(entry.identity).toEqual({
        dev: String(stats.dev),
        ino: String(stats.ino),
        size: String(stats.size),
        mtimeNs: String(stats.mtimeNs),
        ctimeNs: String(stats.ctimeNs),
        birthtimeNs: String(stats.birthtimeNs),
      });
      expect(entry.recursive).toBe(stats.isDirectory());
    }
    expect((await lstat(path.join(remote.indexPath, 'r'))).mode & 0o777).toBe(0o700);
  });

  it('writes immutability.json at the root of a remote XO has written to, readable by XO whatever the umask, and locks it', async () => {
    const remote = await tempRemote();
    await mkdir(path.join(remote.root, 'xo-vm-backups'));
    const umask = process.umask(0o077);
    try {
      await startDaemon(remote);
    } finally {
      process.umask(umask);
    }
    const file = path.join(remote.root, 'immutability.json');
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ immutable: true, duration: 7 * DAY });
    expect((await lstat(file)).mode & 0o777).toBe(0o644);
    expect(isImmutable(file)).toBe(true);
  });

  it('locks nothing outside the root through a symlinked VM folder', async () => {
    const remote = await tempRemote();
    const outside = await tempFolder('xo-immutable-outside-');
    const planted = await writeVmBackup(outside, { vm: 'victim', datetime: xoDatetime(Date.now()) });
    await mkdir(path.join(remote.root, 'xo-vm-backups'));
    await symlink(path.join(outside, 'xo-vm-backups', 'victim'), path.join(remote.root, 'xo-vm-backups', 'linked-vm'));
    await startDaemon(remote);
    const real = await writeVmBackup(remote.root, { datetime: xoDatetime(Date.now()) });
    await waitFor(() => allImmutable(real.units), 'the real backup to be locked');
    for (const unit of planted.units) expect(isImmutable(unit), unit).toBe(false);
  });

  it('follows no symlinked data/ or vdis/ folder out of the remote, whatever an alias says', async () => {
    const remote = await tempRemote();
    const outside = await tempFolder('xo-immutable-outside-');
    // One datetime for the planted disk and the backup, however slow the machine: the disk must match the backup's name.
    const dt = xoDatetime(Date.now());
    await mkdir(path.join(outside, 'victim.vhd', 'blocks'), { recursive: true });
    await writeFile(path.join(outside, 'victim.vhd', 'blocks', '0'), 'precious');
    await writeFile(path.join(outside, `${dt}.vhd`), 'precious');
    await startDaemon(remote);
    const vm = path.join(remote.root, 'xo-vm-backups', 'vm');
    await mkdir(path.join(vm, 'vdis', 'job', 'vdi'), { recursive: true });
    await symlink(outside, path.join(vm, 'vdis', 'job', 'vdi', 'data'));
    await writeFile(path.join(vm, 'vdis', 'job', 'vdi', `${dt}.alias.vhd`), 'data/victim.vhd');
    const other = path.join(remote.root, 'xo-vm-backups', 'vm2');
    await mkdir(other, { recursive: true });
    await symlink(path.join(outside), path.join(other, 'vdis'));
    await writeFile(path.join(other, `${dt}.json`), '{}');
    await writeFile(path.join(vm, `${dt}.json`), '{}');
    await waitFor(
      () => isImmutable(path.join(vm, `${dt}.json`)) && isImmutable(path.join(other, `${dt}.json`)),
      'both jsons to be locked',
    );
    expect(isImmutable(path.join(outside, 'victim.vhd'))).toBe(false);
    expect(isImmutable(path.join(outside, 'victim.vhd', 'blocks', '0'))).toBe(false);
    expect(isImmutable(path.join(outside, `${dt}.vhd`))).toBe(false);
  });

  it('locks only what XO writes where XO writes it, whatever a json names', async () => {
    const remote = await tempRemote();
    await startDaemon(remote);
    const dt = xoDatetime(Date.now());
    const vm = path.join(remote.root, 'xo-vm-backups', 'vm');
    const protectedFiles = [
      path.join(vm, 'cache.json.gz'),
      path.join(vm, '.123.tmp.xva'),
      path.join(vm, 'vdis', 'job', 'vdi', '.parent.merge.json'),
      path.join(vm, 'vdis', 'job', 'vdi', '20200101T000000Z.vhd.partial'),
    ];
    for (const file of protectedFiles) {
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, 'x');
    }
    const json = path.join(vm, `${dt}.json`);
    await writeFile(
      json,
      JSON.stringify({
        xva: 'cache.json.gz',
        vhds: {
          a: 'vdis',
          b: '.123.tmp.xva',
          c: 'vdis/job/vdi/.parent.merge.json',
          d: 'vdis/job',
          e: 'vdis/job/vdi/20200101T000000Z.vhd.partial',
        },
      }),
    );
    await waitFor(() => isImmutable(json), 'the json to be locked');
    for (const file of [...protectedFiles, path.join(vm, 'vdis')]) expect(isImmutable(file), file).toBe(false);
  });

  it('locks a disk with a second hard link all the same with a security warning, and ignores a FIFO', async () => {
    const remote = await tempRemote();
    const outside = path.join(await tempFolder('xo-immutable-outside-'), 'shadow');
    await writeFile(outside, 'precious');
    const { logs } = await startDaemon(remote);
    const dt = xoDatetime(Date.now());
    const vdi = path.join(remote.root, 'xo-vm-backups', 'vm', 'vdis', 'job', 'vdi');
    await mkdir(vdi, { recursive: true });
    await link(outside, path.join(vdi, `${dt}.vhd`));
    const fifoVdi = path.join(remote.root, 'xo-vm-backups', 'vm', 'vdis', 'job', 'vdi2');
    await mkdir(fifoVdi, { recursive: true });
    execFileSync('mkfifo', [path.join(fifoVdi, `${dt}.vhd`)]);
    const json = path.join(remote.root, 'xo-vm-backups', 'vm', `${dt}.json`);
    await writeFile(json, '{}');
    await waitFor(() => isImmutable(json), 'the json to be locked');
    const disk = path.join(vdi, `${dt}.vhd`);
    await waitFor(() => logs.some((l) => l.security === true && l.path === disk), 'the second name to be said');
    // Left unlocked, the backup could be deleted: its disk is locked, and with it its other name (the same inode).
    expect(isImmutable(disk)).toBe(true);
    expect(isImmutable(outside)).toBe(true);
    const warnings = new Set(logs.filter((l) => l.security === true).map((l) => l.msg));
    expect([...warnings]).toEqual([expect.stringMatching(/locked, but .*has 2 hard links.*locked all the same/)]);
    // The FIFO is not a disk at all: never a unit, nothing logged as a failure.
    expect(logs.filter((l) => l.level === 'error')).toEqual([]);
  });
});
