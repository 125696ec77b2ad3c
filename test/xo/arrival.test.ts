import { describe, expect, it } from 'vitest';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import type { Config } from '../../src/config/schema.js';
import { openRemoteContext } from '../../src/context/open.js';
import { liftRemote } from '../../src/lift/apply.js';
import { windowMsOf } from '../../src/remote/model.js';
import { DAY, startDaemon, type RunningDaemon } from '../support/daemon.js';
import { immutableAmong, stopBeforeCleanup, tempRemote, waitFor, type TestRemote } from '../support/remote.js';
import type { Vm, WrittenBackup, XoRemote } from './harness.mjs';
import { missingForXo } from './requirements.js';

// Issue 23 with XO's own writer: a backup's window runs a duration from when it reached the remote, whatever datetime
// XO gave its name (docs/how-it-works.md, "Windows").
const missing = missingForXo();
if (missing !== undefined && process.env.CI !== undefined) throw new Error(`XO compatibility suite: ${missing}`);
if (missing !== undefined) console.log(`xo-arrival: skipped, ${missing}`);
const h = missing === undefined ? await import('./harness.mjs') : undefined;

const HOUR = 3_600_000;
const WEEK = 7 * DAY;
// A window: the duration + its slack.
const WINDOW = windowMsOf(WEEK);
const attributes = new IoctlAdapter();

interface Protected {
  remote: TestRemote;
  running: RunningDaemon;
  xo: XoRemote;
  vm: Vm;
}

// The daemon first, on a new empty remote (7-day window), then XO's remote on it, VHD directories as xo-server writes
// them, EPERM not retried.
async function protectedRemote(): Promise<Protected> {
  const remote = await tempRemote();
  const running = await startDaemon(remote, { config: { jsonSettleMs: 1_000 } });
  const xo = await h!.openRemote({ root: remote.root, useVhdDirectory: true, retryEperm: false });
  stopBeforeCleanup(() => xo.close());
  return { remote, running, xo, vm: h!.makeVm({ disks: [8 * h!.MiB] }) };
}

// Waits until every file of the backups is immutable.
async function locked(xo: XoRemote, backups: readonly WrittenBackup[], what: string): Promise<string[]> {
  const files: string[] = [];
  for (const backup of backups) files.push(...(await h!.backupFiles(xo, backup)));
  await waitFor(() => immutableAmong(files).length === files.length, what);
  return files;
}

// A lift pass after the daemon stopped, as of `now`: how many units it unlocked.
async function lift(running: { config: Config }, now: number): Promise<number> {
  const context = await openRemoteContext(running.config.remotes[0]!, running.config.indexPath);
  return (await liftRemote(context, attributes, { now, dryRun: false, all: false })).unlocked.length;
}

describe.skipIf(h === undefined)("XO's own writer: windows from arrival", () => {
  it('locks a mirror of an 8-day-old backup for 7 days from its arrival; XO restores it, retention cannot delete it', async () => {
    const { running, xo, vm } = await protectedRemote();
    // XO's mirror job (IncrementalRemote) hands the source backup's metadata.timestamp to IncrementalRemoteWriter: the
    // same writer calls as a backup taken 8 days ago, made now.
    const arrival = Date.now();
    const [mirrored] = await h!.writeChain(xo, vm, [arrival - 8 * DAY]);
    const files = await locked(xo, [mirrored!], 'the mirrored backup to be locked');
    await running.daemon.stop();

    // A minute before the 7 days from its arrival end: lift frees none of it, XO's retention cannot delete it.
    expect(await lift(running, arrival + WEEK - 60_000)).toBe(0);
    const { outcome } = await h!.pruneOldestBackup(xo, vm.uuid);
    expect(outcome.deleteError?.code).toBe('EPERM');
    expect(immutableAmong(files)).toHaveLength(files.length);
    expect(await h!.restoreMismatches(xo, mirrored!)).toEqual([]);
    // A minute after: all of it goes, and XO's retention deletes it.
    expect(await lift(running, Date.now() + WINDOW + 60_000)).toBeGreaterThan(0);
    expect(immutableAmong(files)).toEqual([]);
    expect((await h!.pruneOldestBackup(xo, vm.uuid)).outcome.deleteError).toBeNull();
    expect(await h!.listVmBackups(xo, vm.uuid)).toEqual([]);
  });

  it('counts the window of a transfer that arrives hours after its snapshot from its arrival', async () => {
    const { running, xo, vm } = await protectedRemote();
    // Synchronized snapshots (0.74): every VM's snapshot first, this VM's transfer five hours later, named by the snapshot.
    const snapshot = Date.now() - 5 * HOUR;
    const arrival = Date.now();
    const [late] = await h!.writeChain(xo, vm, [snapshot]);
    const files = await locked(xo, [late!], 'the late transfer to be locked');
    await running.daemon.stop();

    // By its name its window is over; from its arrival it has five hours left.
    expect(await lift(running, snapshot + WEEK + 60_000)).toBe(0);
    expect(immutableAmong(files)).toHaveLength(files.length);
    expect(await lift(running, arrival + WEEK - 60_000)).toBe(0);
    expect(await lift(running, Date.now() + WINDOW + 60_000)).toBeGreaterThan(0);
    expect(immutableAmong(files)).toEqual([]);
  });

  it('locks a delta XO wrote while the daemon was stopped, and its base, for 7 days from the restart', async () => {
    const { remote, running: first, xo, vm } = await protectedRemote();
    const [base] = await h!.writeChain(xo, vm, [Date.now() - 3 * DAY]);
    await locked(xo, [base!], 'the first backup to be locked');
    await first.daemon.stop();
    // The daemon is down for two days: XO's nightly delta, taken then, lands meanwhile.
    const taken = Date.now() - 2 * DAY;
    const delta = await h!.writeNightly(xo, vm, taken);
    expect(delta.fellBackToFull).toEqual([]);
    const restart = Date.now();
    const running = await startDaemon(remote, { config: { jsonSettleMs: 1_000 } });
    const files = await locked(xo, [base!, delta], 'the delta written meanwhile to be locked');
    await running.daemon.stop();

    // By its name the delta would go in five days; from the restart, in seven. Its base stays as long.
    expect(await lift(running, taken + WEEK + 60_000)).toBe(0);
    expect(await lift(running, restart + WEEK - 60_000)).toBe(0);
    expect(immutableAmong(files)).toHaveLength(files.length);
    expect(await h!.restoreMismatches(xo, delta)).toEqual([]);
    expect(await lift(running, Date.now() + WINDOW + 60_000)).toBeGreaterThan(0);
    expect(immutableAmong(files)).toEqual([]);
  });

  it('locks a backup XO named a month ahead (its clock wrong) for 7 days from its arrival, not until its name', async () => {
    const { running, xo, vm } = await protectedRemote();
    const arrival = Date.now();
    const [ahead] = await h!.writeChain(xo, vm, [arrival + 30 * DAY]);
    const files = await locked(xo, [ahead!], 'the future-named backup to be locked');
    await waitFor(
      () => running.logs.some((l) => l.security === true && /later than now \+ maxClockJump/.test(l.msg)),
      'a security warning',
    );
    await running.daemon.stop();

    expect(await lift(running, arrival + WEEK - 60_000)).toBe(0);
    expect(immutableAmong(files)).toHaveLength(files.length);
    expect(await lift(running, Date.now() + WINDOW + 60_000)).toBeGreaterThan(0);
    expect(immutableAmong(files)).toEqual([]);
  });
});
