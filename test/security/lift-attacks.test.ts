import { execFileSync } from 'node:child_process';
import { readdirSync, utimesSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AttributesAdapter } from '../../src/attributes/adapter.js';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { openRemoteContext } from '../../src/context/open.js';
import type { RemoteContext } from '../../src/context/remote-context.js';
import { writeVmBackup, xoDatetime, type WrittenBackup } from '../../src/demo/sample-remote.js';
import { entryName } from '../../src/index/entry.js';
import { IndexStore } from '../../src/index/store.js';
import { liftRemote } from '../../src/lift/apply.js';
import { windowMsOf } from '../../src/remote/model.js';
import { DAY, startDaemon } from '../support/daemon.js';
import { runCli } from '../support/cli.js';
import {
  allImmutable,
  filesBelow,
  immutableAmong,
  isImmutable,
  tempRemote,
  waitFor,
  writeConfigFile,
  type TestRemote,
} from '../support/remote.js';
import { killInsideDirectoryUnit } from '../support/processes.js';

// A lift attacked by someone holding XO's credentials (create, rename, delete anything mutable, at any moment): with the
// flag helper as the lift's check and forgets deferred to the end of the pass (whole day buckets), no unit inside its
// window is unlocked and no entry of a unit still locked is lost. Real flag helper on the test's filesystem.
const WINDOW = windowMsOf(7 * DAY);
const attributes = new IoctlAdapter();
const t = Date.UTC(2026, 9, 1, 6, 15, 0);

function contextOf(remote: TestRemote): RemoteContext {
  return {
    id: 'r',
    root: remote.root,
    realRoot: remote.root,
    durationMs: 7 * DAY,
    windowMs: WINDOW,
    index: new IndexStore(remote.indexPath, 'r'),
    encrypted: false,
  };
}

async function protectAt(remote: TestRemote, at: number, backups: () => Promise<WrittenBackup[]>) {
  const written = await backups();
  const { daemon } = await startDaemon(remote, { clock: { now: () => at } });
  await daemon.stop();
  expect(allImmutable(written.flatMap((b) => b.units))).toBe(true);
  return written;
}

function indexFiles(remote: TestRemote): string[] {
  const folder = path.join(remote.indexPath, 'r');
  return readdirSync(folder).flatMap((day) => readdirSync(path.join(folder, day)).map((n) => `${day}/${n}`));
}

// The real helper, with `before` run once, just before the first clear: between the lift's plan and its clear.
function attackedAt(before: () => Promise<void>): AttributesAdapter {
  let done = false;
  return {
    isImmutable: (within, paths) => attributes.isImmutable(within, paths),
    checkClear: (within, targets) => attributes.checkClear(within, targets),
    async setImmutable(within, targets, immutable) {
      if (!immutable && !done) {
        done = true;
        await before();
      }
      return attributes.setImmutable(within, targets, immutable);
    },
  };
}

const mounted: string[] = [];
afterEach(() => {
  for (const point of mounted.splice(0)) execFileSync('umount', [point]);
});

describe('attacks on a lift with XO credentials', () => {
  it('kind swap between plan and clear: a VHD directory made a file and a file made a VHD directory stay locked', async () => {
    const remote = await tempRemote();
    const [backup] = await protectAt(remote, t + 3600_000, async () => [
      await writeVmBackup(remote.root, {
        vm: 'vm',
        datetime: xoDatetime(t),
        disks: [{ type: 'flat' }, { type: 'vhd-directory' }],
      }),
    ]);
    const units = backup!.units;
    const flat = units.find((u) => u.endsWith('.vhd') && !u.includes('/data/') && !u.endsWith('.alias.vhd'))!;
    const directory = units.find((u) => u.includes('/data/'))!;
    const lifted = await liftRemote(
      contextOf(remote),
      attackedAt(async () => {
        // The directory's data/ folder (never immutable) renamed away, a file made in its place with its name.
        await rename(path.dirname(directory), `${path.dirname(directory)}.away`);
        await mkdir(path.dirname(directory));
        await writeFile(directory, 'a file');
        // The flat VHD's VDI folder renamed away; in its place a VHD-layout directory under its name.
        await rename(path.dirname(flat), `${path.dirname(flat)}.away`);
        await mkdir(path.join(flat, 'blocks', '0'), { recursive: true });
        for (const part of ['header', 'footer', 'bat', 'blocks/0/0']) await writeFile(path.join(flat, part), part);
      }),
      { now: t + WINDOW + 1000, dryRun: false, all: false },
    );
    const refused = lifted.suspicious.map((s) => s.path).sort();
    expect(refused).toEqual([directory, flat].sort());
    for (const s of lifted.suspicious) expect(s.reason).toMatch(/not the file checked/);
    expect(isImmutable(path.join(`${path.dirname(directory)}.away`, path.basename(directory)))).toBe(true);
    expect(isImmutable(path.join(`${path.dirname(flat)}.away`, path.basename(flat)))).toBe(true);
    const kept = new Set(indexFiles(remote).map((f) => path.basename(f)));
    expect(kept.has(entryName(directory)) && kept.has(entryName(flat))).toBe(true);
  });

  it('a bucket whose every entry expires keeps the entries of units refused, deferred while XO runs, or moved away', async () => {
    const remote = await tempRemote();
    const backups = await protectAt(remote, t + 3600_000, async () => [
      await writeVmBackup(remote.root, { vm: 'swapped', datetime: xoDatetime(t) }),
      await writeVmBackup(remote.root, { vm: 'busy', datetime: xoDatetime(t) }),
      await writeVmBackup(remote.root, { vm: 'moved', datetime: xoDatetime(t) }),
      await writeVmBackup(remote.root, { vm: 'plain', datetime: xoDatetime(t) }),
    ]);
    const [swapped, busy, moved, plain] = backups as [WrittenBackup, WrittenBackup, WrittenBackup, WrittenBackup];
    const vhdOf = (b: WrittenBackup) => b.units.find((u) => u.endsWith('.vhd'))!;
    // XO runs on the busy VM (its lock folder fresh): asked when each chunk is cleared.
    const lock = path.join(remote.root, 'xo-vm-backups', 'busy.lock');
    await mkdir(lock);
    utimesSync(lock, new Date(), new Date());
    const lifted = await liftRemote(
      contextOf(remote),
      attackedAt(async () => {
        const s = vhdOf(swapped);
        await rename(path.dirname(s), `${path.dirname(s)}.away`);
        await mkdir(path.dirname(s));
        await writeFile(s, 'another');
        const m = vhdOf(moved);
        await rename(path.dirname(m), `${path.dirname(m)}.away`);
      }),
      { now: t + WINDOW + 1000, dryRun: false, all: false },
    );
    expect(lifted.suspicious.map((s) => s.path)).toEqual([vhdOf(swapped)]);
    expect(lifted.failed.map((f) => f.path)).toEqual([vhdOf(moved)]);
    for (const unit of plain.units) expect(isImmutable(unit), unit).toBe(false);
    const left = new Set(indexFiles(remote).map((f) => path.basename(f)));
    for (const unit of [vhdOf(swapped), vhdOf(moved), ...busy.units])
      expect(left.has(entryName(unit)), unit).toBe(true);
    for (const unit of plain.units) expect(left.has(entryName(unit)), unit).toBe(false);
    for (const unit of busy.units) expect(isImmutable(unit), unit).toBe(true);
  });

  it('.freed on another filesystem: expired entries are forgotten one by one, in-window ones stay', async () => {
    const remote = await tempRemote();
    const old = await protectAt(remote, t + 3600_000, async () => [
      await writeVmBackup(remote.root, { vm: 'old', datetime: xoDatetime(t) }),
    ]);
    const recent = await protectAt(remote, t + 5 * DAY, async () => [
      await writeVmBackup(remote.root, { vm: 'recent', datetime: xoDatetime(t + 5 * DAY - 3600_000) }),
    ]);
    const freed = path.join(remote.indexPath, '.freed');
    await mkdir(freed, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', freed]);
    mounted.push(freed);
    const lifted = await liftRemote(contextOf(remote), attributes, {
      now: t + WINDOW + 1000,
      dryRun: false,
      all: false,
    });
    expect(lifted.failed).toEqual([]);
    for (const unit of old[0]!.units) expect(isImmutable(unit), unit).toBe(false);
    for (const unit of recent[0]!.units) expect(isImmutable(unit), unit).toBe(true);
    const left = new Set(indexFiles(remote).map((f) => path.basename(f)));
    expect([...left].sort()).toEqual(recent[0]!.units.map((u) => entryName(u)).sort());
  });

  it('a prompt backup on VHD directories, moved and claimed by an early json, keeps its units until its own window ends', async () => {
    const remote = await tempRemote();
    const { daemon, config } = await startDaemon(remote);
    // Within the slack of its name: dated by its name, nothing recorded for the backup's json.
    const named = Date.now() - 60_000;
    const genuine = await writeVmBackup(remote.root, {
      vm: 'vm',
      datetime: xoDatetime(named),
      disks: [{ type: 'vhd-directory', blocks: 2 }],
    });
    await waitFor(() => allImmutable(genuine.units), 'the genuine backup to be locked');
    const alias = genuine.units.find((u) => u.endsWith('.alias.vhd'))!;
    const directory = genuine.units.find((u) => u.includes('/data/'))!;
    // Its VDI folder (never immutable) moved into a look-alike VM folder, named by a json 5 minutes earlier.
    const evilJob = path.join(remote.root, 'xo-vm-backups', 'look-alike', 'vdis', 'job');
    await mkdir(evilJob, { recursive: true });
    await rename(path.dirname(alias), path.join(evilJob, 'vdi'));
    const movedAlias = path.join(evilJob, 'vdi', path.basename(alias));
    const movedDirectory = path.join(evilJob, 'vdi', 'data', path.basename(directory));
    const early = named - 5 * 60_000;
    const evilJson = path.join(remote.root, 'xo-vm-backups', 'look-alike', `${xoDatetime(early)}.json`);
    await writeFile(evilJson, JSON.stringify({ mode: 'delta', vhds: { x: `vdis/job/vdi/${path.basename(alias)}` } }));
    await waitFor(() => allImmutable([evilJson, movedAlias, movedDirectory]), 'the look-alike backup to be locked');
    await daemon.stop();

    const context = await openRemoteContext(config.remotes[0]!, config.indexPath);
    const first = await liftRemote(context, attributes, {
      now: early + context.windowMs + 60_000,
      dryRun: false,
      all: false,
    });
    expect(first.unlocked.map((u) => u.path)).not.toContain(movedAlias);
    expect(first.unlocked.map((u) => u.path)).not.toContain(movedDirectory);
    expect(allImmutable([movedAlias, movedDirectory, ...(await filesBelow(movedDirectory))])).toBe(true);
  });

  it('a lift killed inside a VHD directory forgets nothing, and the next lift finishes: nothing lost, nothing early', async () => {
    const remote = await tempRemote();
    const config = await writeConfigFile(remote);
    const old = Date.now() - 9 * DAY;
    const [recent] = await protectAt(remote, Date.now(), async () => [
      await writeVmBackup(remote.root, {
        vm: 'recent',
        datetime: xoDatetime(Date.now() - DAY),
        disks: [{ type: 'vhd-directory', blocks: 4 }],
      }),
    ]);
    // Protected by a daemon whose clock stood then (a daemon started now would lift it at its start).
    const [expired] = await protectAt(remote, old + 3600_000, async () => [
      await writeVmBackup(remote.root, {
        vm: 'old',
        datetime: xoDatetime(old),
        disks: [{ type: 'flat' }, { type: 'vhd-directory', blocks: 4 }],
      }),
    ]);
    const directory = expired!.units.find((u) => u.includes('/data/'))!;
    const before = indexFiles(remote).sort();
    await killInsideDirectoryUnit(['lift', '--config', config, '--accept-clock']);
    const below = await filesBelow(directory);
    expect(isImmutable(directory)).toBe(true);
    expect(immutableAmong(below).length).toBeLessThan(below.length);
    // Nothing forgotten before the pass ended: every entry is still there.
    expect(indexFiles(remote).sort()).toEqual(before);

    const again = await runCli(['lift', '--config', config, '--accept-clock']);
    expect(again.status, again.stderr + again.stdout).toBe(0);
    for (const unit of expired!.units) expect(isImmutable(unit), unit).toBe(false);
    expect(immutableAmong(await filesBelow(directory))).toEqual([]);
    const recentDirectory = recent!.units.find((u) => u.includes('/data/'))!;
    expect(allImmutable([...recent!.units, ...(await filesBelow(recentDirectory))])).toBe(true);
    const left = new Set(indexFiles(remote).map((f) => path.basename(f)));
    expect([...left].sort()).toEqual(recent!.units.map((u) => entryName(u)).sort());
  }, 90_000);
});
