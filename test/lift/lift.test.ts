import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AttributesAdapter } from '../../src/attributes/adapter.js';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import {
  writeConfigBackup,
  writePoolBackup,
  writeVmBackup,
  xoDatetime,
  type WrittenBackup,
} from '../../src/demo/sample-remote.js';
import { entryName, lockedEntry, pendingEntry, type IndexEntry } from '../../src/index/entry.js';
import { IndexStore } from '../../src/index/store.js';
import { liftRemote } from '../../src/lift/apply.js';
import { makeRemoteMutable } from '../../src/lift/mutable.js';
import type { RemoteContext } from '../../src/context/remote-context.js';
import { utcDay } from '../../src/remote/datetime.js';
import { DAY, startDaemon } from '../support/daemon.js';
import { allImmutable, isImmutable, tempFolder, tempRemote, waitFor, type TestRemote } from '../support/remote.js';
import { windowMsOf } from '../../src/remote/model.js';

const WEEK = 7 * DAY;
// A window: the duration + its slack.
const WINDOW = windowMsOf(WEEK);
const attributes = new IoctlAdapter();

function contextOf(remote: TestRemote): RemoteContext {
  return {
    id: 'r',
    root: remote.root,
    realRoot: remote.root,
    durationMs: WEEK,
    windowMs: WINDOW,
    index: new IndexStore(remote.indexPath, 'r'),
    encrypted: false,
  };
}

// A remote protected by the real daemon whose clock stood at `at`; the daemon is stopped again.
async function protectAt(
  remote: TestRemote,
  at: number,
  backups: () => Promise<WrittenBackup[]>,
): Promise<WrittenBackup[]> {
  const written = await backups();
  const { daemon } = await startDaemon(remote, { clock: { now: () => at } });
  await daemon.stop();
  expect(allImmutable(written.flatMap((b) => b.units))).toBe(true);
  return written;
}

// A VM backup at t protected by the daemon, whose disk a newer backup (after a merge) references again: `newerEntry`
// turns the disk's entry into the one that newer backup's bucket holds.
async function diskReferencedAgain(
  remote: TestRemote,
  t: number,
  newer: number,
  newerEntry: (entry: IndexEntry) => IndexEntry,
) {
  const [vm] = await protectAt(remote, t + 3600_000, async () => [
    await writeVmBackup(remote.root, { vm: 'vm', datetime: xoDatetime(t) }),
  ]);
  const disk = vm!.units.find((u) => u.endsWith('.vhd'))!;
  const context = contextOf(remote);
  const [old] = await context.index.readEntries(utcDay(t), [entryName(disk)]);
  await context.index.write(
    newerEntry({ ...old!.entry!, backupDatetime: new Date(newer).toISOString(), day: utcDay(newer) }),
  );
  return { vm: vm!, disk, context };
}

function indexFiles(remote: TestRemote): string[] {
  const folder = path.join(remote.indexPath, 'r');
  return readdirSync(folder).flatMap((day) => readdirSync(path.join(folder, day)).map((n) => `${day}/${n}`));
}

// The real flag helper, except on `failing`, which it reports failed as chattr would on an I/O error.
function failingOn(failing: string): AttributesAdapter {
  return {
    isImmutable: (within, paths) => attributes.isImmutable(within, paths),
    checkClear: (within, targets) => attributes.checkClear(within, targets),
    async setImmutable(within, targets, immutable) {
      const outcomes = await attributes.setImmutable(
        within,
        targets.filter((target) => target.path !== failing),
        immutable,
      );
      return targets.some((target) => target.path === failing)
        ? [...outcomes, { path: failing, status: 'failed', code: 'EIO', message: 'chattr: Input/output error' }]
        : outcomes;
    },
  };
}

// The buckets moved whole into .freed: the names each holds, sorted.
function movedBuckets(remote: TestRemote): string[][] {
  const freed = path.join(remote.indexPath, '.freed', 'r');
  return readdirSync(freed, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => readdirSync(path.join(freed, entry.name)).sort())
    .sort();
}

// indexFiles' `day/name`s as the names of each bucket, sorted.
function bucketsOf(entries: readonly string[]): string[][] {
  const byDay = new Map<string, string[]>();
  for (const entry of entries) {
    const [day, name] = entry.split('/') as [string, string];
    byDay.set(day, [...(byDay.get(day) ?? []), name]);
  }
  return [...byDay.values()].map((names) => names.sort()).sort();
}

describe('lift on ext4 with real chattr', () => {
  const t = Date.UTC(2026, 9, 1, 6, 15, 0);
  const all3 = (root: string, dt: string) => async () => [
    await writeVmBackup(root, { vm: `vm-${dt}`, datetime: dt, disks: [{ type: 'flat' }, { type: 'vhd-directory' }] }),
    await writeConfigBackup(root, 'sched', dt),
    await writePoolBackup(root, 'sched', 'pool', dt),
  ];

  it('unlocks nothing one day before the window ends, then every expired backup of all three kinds, deletable by rm -rf', async () => {
    const remote = await tempRemote();
    const expired = await protectAt(remote, t + 3600_000, all3(remote.root, xoDatetime(t)));
    const recent = await protectAt(remote, t + 3 * DAY, all3(remote.root, xoDatetime(t + 3 * DAY)));
    const before = await liftRemote(contextOf(remote), attributes, { now: t + WEEK - DAY, dryRun: false, all: false });
    expect(before.unlocked).toEqual([]);
    expect(allImmutable([...expired, ...recent].flatMap((b) => b.units))).toBe(true);

    const report = await liftRemote(contextOf(remote), attributes, {
      now: t + WINDOW + 1000,
      dryRun: false,
      all: false,
    });
    expect(report.failed).toEqual([]);
    expect(report.suspicious).toEqual([]);
    expect(report.unlocked.map((u) => u.day)).toEqual(Array(report.unlocked.length).fill(utcDay(t)));
    for (const unit of expired.flatMap((b) => b.units)) expect(isImmutable(unit), unit).toBe(false);
    expect(allImmutable(recent.flatMap((b) => b.units))).toBe(true);
    // XO's metadata cache is XO's: a lift leaves it (XO's cleanVm warns when it finds it gone).
    expect(existsSync(expired[0]!.neverLocked[0]!)).toBe(true);
    // What XO's retention does: delete whole backups with a plain rm -rf.
    execFileSync('rm', ['-rf', path.dirname(expired[0]!.label), expired[1]!.label, expired[2]!.label]);
    expect(existsSync(expired[1]!.label)).toBe(false);
    // Only the recent backup's day bucket is left in the index.
    expect(readdirSync(path.join(remote.indexPath, 'r'))).toEqual([utcDay(t + 3 * DAY)]);
  });

  it('changes nothing with dryRun, and says what it would unlock', async () => {
    const remote = await tempRemote();
    const written = await protectAt(remote, t + 3600_000, all3(remote.root, xoDatetime(t)));
    const entries = indexFiles(remote);
    const report = await liftRemote(contextOf(remote), attributes, { now: t + 30 * DAY, dryRun: true, all: false });
    expect(report.unlocked).toHaveLength(entries.length);
    expect(allImmutable(written.flatMap((b) => b.units))).toBe(true);
    expect(indexFiles(remote)).toEqual(entries);
    expect(existsSync(written[0]!.neverLocked[0]!)).toBe(true);
  });

  it('lifts in chunks over several buckets, each chunk forgotten while the next one is unlocked, and leaves no entry', async () => {
    const remote = await tempRemote();
    const first = await protectAt(remote, t + 3600_000, all3(remote.root, xoDatetime(t)));
    const second = await protectAt(remote, t + DAY + 3600_000, all3(remote.root, xoDatetime(t + DAY)));
    const entries = indexFiles(remote);
    const dry = await liftRemote(contextOf(remote), attributes, {
      now: t + WINDOW + DAY + 1000,
      dryRun: true,
      all: false,
      chunkSize: 2,
    });
    expect(dry.unlocked).toHaveLength(entries.length);
    expect(indexFiles(remote)).toEqual(entries);
    const report = await liftRemote(contextOf(remote), attributes, {
      now: t + WINDOW + DAY + 1000,
      dryRun: false,
      all: false,
      chunkSize: 2,
    });
    expect(report.failed).toEqual([]);
    expect(report.unlocked).toHaveLength(entries.length);
    expect(report.kept).toBe(0);
    for (const unit of [...first, ...second].flatMap((b) => b.units)) expect(isImmutable(unit), unit).toBe(false);
    expect(readdirSync(path.join(remote.indexPath, 'r'))).toEqual([]);
    // Every entry of each bucket went: each bucket was moved whole, one rename, into .freed, where the daemon unlinks
    // its entries (index/freed.ts).
    expect(movedBuckets(remote)).toEqual(bucketsOf(entries));
  });

  it('forgets entry by entry a bucket that keeps one (a window not passed, an unlock that failed), and no other', async () => {
    const remote = await tempRemote();
    // Two buckets: in the first one chattr fails on; in the second a backup whose window has not passed (same day,
    // 12 hours later).
    const other = await protectAt(remote, t - DAY + 3600_000, all3(remote.root, xoDatetime(t - DAY)));
    const expired = await protectAt(remote, t + 3600_000, all3(remote.root, xoDatetime(t)));
    const recent = await protectAt(remote, t + 13 * 3600_000, async () => [
      await writeVmBackup(remote.root, { vm: 'recent', datetime: xoDatetime(t + 12 * 3600_000) }),
    ]);
    const failing = other[1]!.label;
    const before = indexFiles(remote);
    const report = await liftRemote(contextOf(remote), failingOn(failing), {
      now: t + WINDOW + 1000,
      dryRun: false,
      all: false,
      chunkSize: 2,
    });
    expect(report.failed.map((f) => f.path)).toEqual([failing]);
    expect(allImmutable(recent.flatMap((b) => b.units))).toBe(true);
    for (const backup of [...expired, ...other])
      for (const unit of backup.units) expect(isImmutable(unit), unit).toBe(backup === other[1]);
    const stay = new Set([failing, ...recent.flatMap((b) => b.units)].map((unit) => entryName(unit)));
    expect(indexFiles(remote).sort()).toEqual(before.filter((entry) => stay.has(path.basename(entry))).sort());
    // No bucket moved: the forgotten entries are in .freed one by one.
    expect(movedBuckets(remote)).toEqual([]);
  });

  it('puts back an entry another process wrote into a bucket after the lift listed it, and this process writes there again', async () => {
    const remote = await tempRemote();
    const written = await protectAt(remote, t + 3600_000, all3(remote.root, xoDatetime(t)));
    const context = contextOf(remote);
    const entries = indexFiles(remote);
    const day = utcDay(t);
    // Another process's writer (a daemon, rebuild-index) adds an entry to the bucket while the lift runs.
    const newcomer = pendingEntry(
      {
        remote: 'r',
        path: path.join(remote.root, 'xo-vm-backups', 'newcomer', `${xoDatetime(t)}.json`),
        kind: 'vm',
        recursive: false,
        backup: `${xoDatetime(t)}.json`,
        backupInstant: t,
      },
      t,
    );
    let calls = 0;
    const writing: AttributesAdapter = {
      isImmutable: (within, paths) => attributes.isImmutable(within, paths),
      checkClear: (within, targets) => attributes.checkClear(within, targets),
      async setImmutable(within, targets, immutable) {
        if (calls++ === 1) await new IndexStore(remote.indexPath, 'r').write(newcomer);
        return attributes.setImmutable(within, targets, immutable);
      },
    };
    const report = await liftRemote(context, writing, {
      now: t + WINDOW + 1000,
      dryRun: false,
      all: false,
      chunkSize: 2,
    });
    expect(report.failed).toEqual([]);
    expect(calls).toBeGreaterThan(2);
    for (const unit of written.flatMap((b) => b.units)) expect(isImmutable(unit), unit).toBe(false);
    // The bucket was moved whole, and the newcomer put back into it, as it was written.
    expect(movedBuckets(remote)).toEqual(bucketsOf(entries));
    expect(indexFiles(remote)).toEqual([`${day}/${entryName(newcomer.path)}`]);
    expect(await context.index.read(day, newcomer.path)).toEqual(newcomer);
    // The lift's own store writes into that day again.
    const again = { ...newcomer, path: `${newcomer.path}.again` };
    await context.index.write(again);
    expect(await context.index.read(day, again.path)).toEqual(again);
  });

  it('forgets no entry before its unit is unlocked, keeps what chattr failed on, and stops after a chattr that cannot run', async () => {
    const remote = await tempRemote();
    const written = await protectAt(remote, t + 3600_000, all3(remote.root, xoDatetime(t)));
    const context = contextOf(remote);
    const day = utcDay(t);
    const hasEntry = (unit: string) => existsSync(path.join(remote.indexPath, 'r', day, entryName(unit)));
    const failing = written[1]!.label;
    let calls = 0;
    // The real chattr, watched: every unit it is asked to unlock still has its entry then.
    const watched: AttributesAdapter = {
      isImmutable: (within, paths) => attributes.isImmutable(within, paths),
      checkClear: (within, targets) => attributes.checkClear(within, targets),
      async setImmutable(within, targets, immutable) {
        calls++;
        for (const target of targets) expect(hasEntry(target.path), target.path).toBe(true);
        if (calls === 3) throw Object.assign(new Error('spawn chattr EAGAIN'), { code: 'EAGAIN' });
        return failingOn(failing).setImmutable(within, targets, immutable);
      },
    };
    const units = (await context.index.readDay(day)).map((stored) => stored.entry!.path);
    expect(units).toContain(failing);
    await expect(
      liftRemote(context, watched, { now: t + WINDOW + 1000, dryRun: false, all: false, chunkSize: 2 }),
    ).rejects.toMatchObject({ code: 'EAGAIN' });
    // Whatever was unlocked before the failure has no entry left, except the one chattr failed on; the rest is untouched.
    for (const unit of units) expect(hasEntry(unit), unit).toBe(isImmutable(unit) || unit === failing);
    expect(isImmutable(failing)).toBe(true);
    expect(units.filter((unit) => !isImmutable(unit)).length).toBeGreaterThan(0);
    // The next pass, with chattr working, lifts the rest.
    const report = await liftRemote(context, attributes, {
      now: t + WINDOW + 1000,
      dryRun: false,
      all: false,
      chunkSize: 2,
    });
    expect(report.failed).toEqual([]);
    for (const unit of written.flatMap((b) => b.units)) expect(isImmutable(unit), unit).toBe(false);
    expect(readdirSync(path.join(remote.indexPath, 'r'))).toEqual([]);
  });

  it('repairs a crash between unlocking and forgetting: the next pass removes the entries of already-unlocked units', async () => {
    const remote = await tempRemote();
    const written = await protectAt(remote, t + 3600_000, all3(remote.root, xoDatetime(t)));
    // The crashed pass had unlocked every backup but removed no entry.
    for (const backup of written)
      execFileSync('chattr', ['-R', '-i', backup.label.endsWith('.json') ? path.dirname(backup.label) : backup.label]);
    const report = await liftRemote(contextOf(remote), attributes, {
      now: t + WINDOW + 1000,
      dryRun: false,
      all: false,
    });
    expect(report.failed).toEqual([]);
    // One entry per unit: the VM's json, flat disk, alias and VHD directory, and one folder per config or pool backup.
    expect(report.unlocked.length).toBe(4 + 1 + 1);
    expect(readdirSync(path.join(remote.indexPath, 'r'))).toEqual([]);
  });

  it('refuses an entry pointing outside the root, or through a symlinked folder, and one whose inode changed', async () => {
    const remote = await tempRemote();
    const outside = await tempFolder('xo-immutable-outside-');
    const victim = path.join(outside, 'victim');
    await writeFile(victim, 'not a backup');
    execFileSync('chattr', ['+i', victim]);
    const store = new IndexStore(remote.indexPath, 'r');
    const plant = async (unit: string) => {
      const ino = execFileSync('stat', ['-c', '%d %i', unit], { encoding: 'utf8' }).trim().split(' ');
      await store.write(
        lockedEntry(
          pendingEntry({ remote: 'r', path: unit, kind: 'vm', recursive: false, backup: unit, backupInstant: t }, t),
          { dev: ino[0]!, ino: ino[1]!, size: '0', mtimeNs: '0', ctimeNs: '0' },
          t,
        ),
      );
    };
    const [replaced] = await protectAt(remote, t + 3600_000, async () => [
      await writeVmBackup(remote.root, { vm: 'vm', datetime: xoDatetime(t) }),
    ]);
    await plant(victim);
    await symlink(outside, path.join(remote.root, 'xo-vm-backups', 'linked'));
    await plant(path.join(remote.root, 'xo-vm-backups', 'linked', 'victim'));
    const json = replaced!.label;
    execFileSync('chattr', ['-i', json]);
    await unlink(json);
    await writeFile(json, '{"planted":true}');
    execFileSync('chattr', ['+i', json]);

    const report = await liftRemote(contextOf(remote), attributes, {
      now: t + WINDOW + 1000,
      dryRun: false,
      all: false,
    });
    expect(report.suspicious.map((s) => s.path).sort()).toEqual(
      [json, path.join(remote.root, 'xo-vm-backups', 'linked', 'victim'), victim].sort(),
    );
    expect(isImmutable(victim)).toBe(true);
    expect(isImmutable(json)).toBe(true);
    expect(existsSync(path.join(remote.indexPath, 'r', utcDay(t), entryName(victim)))).toBe(true);
  });

  it('keeps locked a directory unit an older version locked with foreign content in it, and says so', async () => {
    const remote = await tempRemote();
    await protectAt(remote, t + 3600_000, async () => [
      await writeVmBackup(remote.root, { vm: 'vm', datetime: xoDatetime(t) }),
    ]);
    // Locked whole, as versions before the layout check did: a look-alike VHD directory holding another VM's backup.
    const unit = path.join(remote.root, 'xo-vm-backups', 'junk', 'vdis', 'j', 'v', `${xoDatetime(t)}.vhd`);
    await mkdir(path.join(unit, 'blocks', '0'), { recursive: true });
    for (const part of ['header', 'footer', 'bat']) await writeFile(path.join(unit, part), part);
    await mkdir(path.join(unit, 'other-vm'));
    const foreign = path.join(unit, 'other-vm', `${xoDatetime(t + 3 * DAY)}.json`);
    await writeFile(foreign, '{}');
    execFileSync('chattr', ['-R', '+i', unit]);
    const [dev, ino] = execFileSync('stat', ['-c', '%d %i', unit], { encoding: 'utf8' }).trim().split(' ');
    const store = new IndexStore(remote.indexPath, 'r');
    await store.write(
      lockedEntry(
        pendingEntry({ remote: 'r', path: unit, kind: 'vm', recursive: true, backup: unit, backupInstant: t }, t),
        { dev: dev!, ino: ino!, size: '0', mtimeNs: '0', ctimeNs: '0' },
        t,
      ),
    );

    const report = await liftRemote(contextOf(remote), attributes, {
      now: t + WINDOW + 1000,
      dryRun: false,
      all: false,
    });
    expect(report.suspicious.map((s) => s.path)).toEqual([unit]);
    expect(report.suspicious[0]?.reason).toMatch(/other-vm is not part of a VHD directory/);
    for (const locked of [unit, path.join(unit, 'header'), path.join(unit, 'other-vm'), foreign])
      expect(isImmutable(locked), locked).toBe(true);
  });

  it('makes a remote fully mutable with all: the index, anything it lost track of, and immutability.json', async () => {
    const remote = await tempRemote();
    const written = await protectAt(remote, t + 3600_000, all3(remote.root, xoDatetime(t + 3600_000)));
    const stray = path.join(remote.root, 'xo-vm-backups', 'stray');
    await writeFile(stray, 'locked by hand');
    execFileSync('chattr', ['+i', stray]);
    const report = await makeRemoteMutable(contextOf(remote), attributes, t + 3600_000);
    expect(report.failed).toEqual([]);
    for (const unit of [...written.flatMap((b) => b.units), stray, path.join(remote.root, 'immutability.json')])
      expect(isImmutable(unit), unit).toBe(false);
    expect(JSON.parse(await readFile(path.join(remote.root, 'immutability.json'), 'utf8'))).toMatchObject({
      immutable: false,
    });
    expect(readdirSync(path.join(remote.indexPath, 'r'))).toEqual([]);
    // No daemon will run for it: what the index forgot is unlinked now.
    expect(readdirSync(path.join(remote.indexPath, '.freed', 'r'))).toEqual([]);
    await rm(remote.root, { recursive: true });
  });

  it('lifts in the daemon at start and every liftEvery, as the clock moves past the window', async () => {
    const remote = await tempRemote();
    let now = t + 3600_000;
    const written = await all3(remote.root, xoDatetime(t))();
    const { logs } = await startDaemon(remote, { clock: { now: () => now }, config: { liftEveryMs: 100 } });
    expect(allImmutable(written.flatMap((b) => b.units)), 'locked at start').toBe(true);
    now = t + WINDOW + 1000;
    await waitFor(
      () => written.flatMap((b) => b.units).every((u) => !isImmutable(u)),
      'the daemon to lift the expired backups',
    );
    await waitFor(
      () => logs.filter((l) => l.msg.startsWith('lifted ')).reduce((n, l) => n + Number(l.unlocked), 0) === 6,
      'the lift to be logged',
    );
    // What the pass forgot is unlinked in the background, not left to pile up.
    expect(indexFiles(remote)).toEqual([]);
    await waitFor(
      () => readdirSync(path.join(remote.indexPath, '.freed', 'r')).length === 0,
      'the forgotten entries to be unlinked',
    );
  });

  it('forgets nothing while the root is not the protected remote (unmounted), and lifts once it is back', async () => {
    const remote = await tempRemote();
    const written = await protectAt(remote, t + 3600_000, all3(remote.root, xoDatetime(t)));
    const entries = indexFiles(remote);
    // Unmounted: the mount point is an empty folder.
    const away = `${remote.root}.away`;
    await rename(remote.root, away);
    await mkdir(remote.root);
    const report = await liftRemote(contextOf(remote), attributes, {
      now: t + WINDOW + 1000,
      dryRun: false,
      all: false,
    });
    expect(report.unlocked).toEqual([]);
    expect(report.vanished).toEqual([]);
    expect(report.failed[0]?.message).toContain('is the remote mounted?');
    expect(indexFiles(remote)).toEqual(entries);
    await rm(remote.root, { recursive: true });
    await rename(away, remote.root);
    const back = await liftRemote(contextOf(remote), attributes, { now: t + WINDOW + 1000, dryRun: false, all: false });
    expect(back.failed).toEqual([]);
    for (const unit of written.flatMap((b) => b.units)) expect(isImmutable(unit), unit).toBe(false);
  });

  it('keeps the entries of units whose folder was renamed away, and still compares identity across a new device number', async () => {
    const remote = await tempRemote();
    const [vm] = await protectAt(remote, t + 3600_000, async () => [
      await writeVmBackup(remote.root, { vm: 'vm', datetime: xoDatetime(t) }),
    ]);
    const folder = path.dirname(vm!.label);
    await rename(folder, path.join(path.dirname(folder), '.hidden'));
    const report = await liftRemote(contextOf(remote), attributes, {
      now: t + WINDOW + 1000,
      dryRun: false,
      all: false,
    });
    expect(report.vanished).toEqual([]);
    expect(report.failed.map((f) => f.path).sort()).toEqual([...vm!.units].sort());
    await rename(path.join(path.dirname(folder), '.hidden'), folder);
    // The same files after a reboot that renumbered the disk: entries record another device number.
    for (const day of readdirSync(path.join(remote.indexPath, 'r'))) {
      for (const name of readdirSync(path.join(remote.indexPath, 'r', day))) {
        const file = path.join(remote.indexPath, 'r', day, name);
        const entry = JSON.parse(await readFile(file, 'utf8')) as { identity: { dev: string } };
        entry.identity.dev = '999999';
        await writeFile(file, JSON.stringify(entry));
      }
    }
    const back = await liftRemote(contextOf(remote), attributes, { now: t + WINDOW + 1000, dryRun: false, all: false });
    expect(back.suspicious).toEqual([]);
    for (const unit of vm!.units) expect(isImmutable(unit), unit).toBe(false);
  });

  it('reads the index as buckets on disk: a unit a newer bucket names again stays locked until that bucket expires, then all its entries go', async () => {
    const remote = await tempRemote();
    // A newer backup (after a merge) references the same disk: its entry sits in a later bucket.
    const newer = t + 3 * DAY;
    const { vm, disk, context } = await diskReferencedAgain(remote, t, newer, (entry) => ({
      ...entry,
      backup: 'newer.json',
    }));
    // A bucket in the window is not even read: a damaged entry there is not reported by a pass with nothing to lift.
    await mkdir(path.join(remote.indexPath, 'r', utcDay(newer + DAY)), { recursive: true });
    await writeFile(path.join(remote.indexPath, 'r', utcDay(newer + DAY), entryName('/elsewhere')), 'damaged');
    const early = await liftRemote(context, attributes, { now: t + WINDOW + 1000, dryRun: false, all: false });
    // The disk is a flat VHD: its backup's json stays locked with it (XO's cleanVm would delete it: lift/flat-order.ts).
    expect(early.unlocked.map((u) => u.path).sort()).toEqual(
      vm.units.filter((u) => u !== disk && u !== vm.label).sort(),
    );
    expect(early.deferred).toEqual([vm.label]);
    expect(isImmutable(disk) && isImmutable(vm.label)).toBe(true);
    expect(early.unreadableEntries).toEqual([]);
    expect(indexFiles(remote).sort()).toEqual(
      [
        `${utcDay(t)}/${entryName(vm.label)}`,
        `${utcDay(t)}/${entryName(disk)}`,
        `${utcDay(newer)}/${entryName(disk)}`,
        `${utcDay(newer + DAY)}/${entryName('/elsewhere')}`,
      ].sort(),
    );

    const late = await liftRemote(context, attributes, { now: newer + WINDOW + 1000, dryRun: false, all: false });
    expect(late.unlocked.map((u) => u.path)).toEqual([disk, vm.label]);
    expect(isImmutable(disk) || isImmutable(vm.label)).toBe(false);
    expect(indexFiles(remote)).toEqual([`${utcDay(newer + DAY)}/${entryName('/elsewhere')}`]);
    // Once its bucket can hold expired entries, the damaged one is read and reported, and left alone.
    const later = await liftRemote(context, attributes, {
      now: newer + DAY + WINDOW + 1000,
      dryRun: false,
      all: false,
    });
    expect(later.unreadableEntries).toEqual([
      path.join(remote.indexPath, 'r', utcDay(newer + DAY), entryName('/elsewhere')),
    ]);
  });

  it('checks the identity an older entry recorded when the newest entry for a unit was written before its lock (pending)', async () => {
    const remote = await tempRemote();
    const newer = t + 2 * DAY;
    const { disk, context } = await diskReferencedAgain(remote, t, newer, (entry) => {
      const pending: IndexEntry = { ...entry, state: 'pending' };
      delete pending.identity;
      delete pending.lockedAt;
      return pending;
    });
    // Another file at the disk's path, locked by someone else: not the file that was locked.
    execFileSync('chattr', ['-i', disk]);
    await rm(disk);
    await writeFile(disk, 'planted');
    execFileSync('chattr', ['+i', disk]);
    const report = await liftRemote(context, attributes, { now: newer + WINDOW + 1000, dryRun: false, all: false });
    expect(report.suspicious.map((s) => s.path)).toEqual([disk]);
    expect(isImmutable(disk)).toBe(true);
  });
});
