import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { openRemoteContext } from '../../src/context/open.js';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { entryName, pendingEntry } from '../../src/index/entry.js';
import { liftRemote } from '../../src/lift/apply.js';
import { windowMsOf } from '../../src/remote/model.js';
import { DAY, startDaemon } from '../support/daemon.js';
import { allImmutable, isImmutable, tempRemote, waitFor } from '../support/remote.js';

const HOUR = 3_600_000;
const attributes = new IoctlAdapter();

describe('a locked unit moved by someone holding XO credentials', () => {
  it('keeps the window it was locked for, whatever date the new path, alias and json give it', async () => {
    const remote = await tempRemote();
    // By name: by arrival, the look-alike json below arrives now and gets a whole window, longer than the unit's own.
    const oneDay = [
      {
        id: 'r',
        root: remote.root,
        immutabilityDurationMs: DAY,
        rebuildIndexOnStart: false,
        windowStart: 'name' as const,
      },
    ];
    // A merged VHD directory: it keeps its older name (3 days), and an alias dated an hour ago points to it, so it is
    // locked until that backup's window ends, in 23 hours.
    const genuine = await writeVmBackup(remote.root, {
      vm: 'vm',
      datetime: xoDatetime(Date.now() - HOUR),
      disks: [{ type: 'vhd-directory' }],
    });
    const written = genuine.units.find((u) => u.includes(`${path.sep}data${path.sep}`))!;
    const directory = path.join(path.dirname(written), `${xoDatetime(Date.now() - 3 * DAY)}.vhd`);
    await rename(written, directory);
    const alias = genuine.units.find((u) => u.endsWith('.alias.vhd'))!;
    await writeFile(alias, `data/${path.basename(directory)}`);
    const { daemon, logs, config } = await startDaemon(remote, { config: { remotes: oneDay } });
    await waitFor(() => allImmutable([directory, alias, genuine.label]), 'the genuine backup to be locked');

    // The attack: its data/ folder (never immutable: XO writes in it) moves into a look-alike VM folder, where an
    // alias dated 20 s before the window's end and a json name it.
    const evilVdi = path.join(remote.root, 'xo-vm-backups', 'look-alike', 'vdis', 'job', 'vdi');
    await mkdir(evilVdi, { recursive: true });
    await rename(path.dirname(directory), path.join(evilVdi, 'data'));
    const moved = path.join(evilVdi, 'data', path.basename(directory));
    const early = xoDatetime(Date.now() - windowMsOf(DAY) + 20_000);
    await writeFile(path.join(evilVdi, `${early}.alias.vhd`), `data/${path.basename(directory)}`);
    await writeFile(
      path.join(remote.root, 'xo-vm-backups', 'look-alike', `${early}.json`),
      JSON.stringify({ mode: 'delta', vhds: { x: `vdis/job/vdi/${early}.alias.vhd` } }),
    );
    await waitFor(() => logs.some((l) => l.security === true && l.path === moved), 'a security warning naming it');
    expect(logs.find((l) => l.path === moved && l.security === true)?.msg).toContain('moved?');
    await daemon.stop();

    // Five minutes later the new path's window has passed; the unit's own has 23 hours to go.
    const report = await liftRemote(await openRemoteContext(config.remotes[0]!, config.indexPath), attributes, {
      now: Date.now() + 5 * 60_000,
      dryRun: false,
      all: false,
    });
    expect(isImmutable(moved)).toBe(true);
    expect(report.unlocked.map((u) => u.path)).not.toContain(moved);
    expect(report.suspicious.find((s) => s.path === moved)?.reason).toMatch(/keeps that window/);
  });

  it('keeps the window of a prompt backup (no window record) by its own name, wherever it is moved', async () => {
    const remote = await tempRemote();
    const { daemon, config } = await startDaemon(remote);
    // Finished a minute after its name's datetime, within the slack: dated by its name, nothing recorded by identity.
    const named = Date.now() - 60_000;
    const genuine = await writeVmBackup(remote.root, { vm: 'vm', datetime: xoDatetime(named) });
    await waitFor(() => allImmutable(genuine.units), 'the genuine backup to be locked');
    const disk = genuine.units.find((u) => u.endsWith('.vhd'))!;

    // The attack: its VDI folder (never immutable) moves into a look-alike VM folder, where a json dated 5 minutes
    // before it (within the slack of now: dated by that name, no record either) names its VHD.
    const evilJob = path.join(remote.root, 'xo-vm-backups', 'look-alike', 'vdis', 'job');
    await mkdir(evilJob, { recursive: true });
    await rename(path.dirname(disk), path.join(evilJob, 'vdi'));
    const moved = path.join(evilJob, 'vdi', path.basename(disk));
    const early = named - 5 * 60_000;
    const evilJson = path.join(remote.root, 'xo-vm-backups', 'look-alike', `${xoDatetime(early)}.json`);
    await writeFile(evilJson, JSON.stringify({ mode: 'delta', vhds: { x: `vdis/job/vdi/${path.basename(disk)}` } }));
    await waitFor(() => allImmutable([evilJson, moved]), 'the look-alike backup to be locked');
    await daemon.stop();

    // The look-alike's window has passed, the VHD's own name's has not: it stays, whatever entry names it.
    const context = await openRemoteContext(config.remotes[0]!, config.indexPath);
    const lift = (now: number) => liftRemote(context, attributes, { now, dryRun: false, all: false });
    const first = await lift(early + context.windowMs + 60_000);
    expect(first.unlocked.map((u) => u.path)).not.toContain(moved);
    expect(isImmutable(moved)).toBe(true);
    const second = await lift(named + context.windowMs + 60_000);
    expect(second.unlocked.map((u) => u.path)).toContain(moved);
    expect(isImmutable(moved)).toBe(false);
  });

  it('never unlocks an entry whose identity was never recorded', async () => {
    const remote = await tempRemote();
    const old = Date.now() - 30 * DAY;
    const written = await writeVmBackup(remote.root, { vm: 'vm', datetime: xoDatetime(old) });
    // The daemon writes the remote's immutability.json (lift acts only on a root that has it), then stops.
    const { daemon, config } = await startDaemon(remote);
    await daemon.stop();
    const unit = written.units[0]!;
    await attributes.setImmutable(
      { root: remote.root, realRoot: remote.root },
      [{ path: unit, recursive: false }],
      true,
    );
    const context = await openRemoteContext(config.remotes[0]!, config.indexPath);
    // A lock batch that never completed: the entry was written ahead, the identity never recorded.
    const request = {
      remote: 'r',
      path: unit,
      kind: 'vm' as const,
      recursive: false,
      backup: unit,
      backupInstant: old,
    };
    await context.index.write(pendingEntry(request, old));
    const report = await liftRemote(context, attributes, { now: Date.now(), dryRun: false, all: false });
    expect(isImmutable(unit)).toBe(true);
    expect(report.suspicious.map((s) => s.path)).toEqual([unit]);
    expect(report.suspicious[0]?.reason).toMatch(/identity was never recorded/);
    expect(await context.index.readEntries(pendingEntry(request, old).day, [entryName(unit)])).toHaveLength(1);
  });
});
