import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import type { Config } from '../../src/config/schema.js';
import { openRemoteContext } from '../../src/context/open.js';
import { writeConfigBackup, writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { liftRemote } from '../../src/lift/apply.js';
import { parseBackupDatetime } from '../../src/remote/datetime.js';
import { identityOf } from '../../src/remote/identity.js';
import { windowMsOf, windowSlackMs } from '../../src/remote/model.js';
import { verifyRemote } from '../../src/verify/verify.js';
import { DAY, startDaemon } from '../support/daemon.js';
import { allImmutable, isImmutable, tempRemote, waitFor } from '../support/remote.js';
import { writeVhdChain } from '../support/vhd-chain.js';

const HOUR = 3_600_000;
const WEEK = 7 * DAY;
// A window: the duration + its slack (1 %: 1 h 40 min 48 s).
const WINDOW = windowMsOf(WEEK);
const SLACK = windowSlackMs(WEEK);
const attributes = new IoctlAdapter();

// The window records of a remote's index: every file but since.json.
function windowFiles(folder: string): string[] {
  return readdirSync(folder).filter((name) => name !== 'since.json');
}

// A lift pass after the daemon stopped, as of `now`: the paths it unlocked.
async function lift(running: { config: Config }, now: number): Promise<string[]> {
  const context = await openRemoteContext(running.config.remotes[0]!, running.config.indexPath);
  return (await liftRemote(context, attributes, { now, dryRun: false, all: false })).unlocked.map((u) => u.path);
}

// Issue 23: a window ends a duration after the later of the backup's name and the moment the daemon first found it
// complete. On a remote's first start, what is there already is dated by its name.
describe('windows from arrival', () => {
  it('leaves what is past its window by name at the first start, then locks a late mirror for a whole window', async () => {
    const remote = await tempRemote();
    const old = await writeVmBackup(remote.root, { vm: 'vm', datetime: xoDatetime(Date.now() - 8 * DAY) });
    const oldConfig = await writeConfigBackup(remote.root, 'sched', xoDatetime(Date.now() - 8 * DAY));
    const running = await startDaemon(remote);
    const said = running.logs.find((l) => l.msg.includes('watched for the first time'));
    expect(said?.backups).toBe(2);

    // Mirrored now, eight days after they were taken: XO keeps the source's datetime in the names.
    const arrival = Date.now();
    const mirrored = await writeVmBackup(remote.root, { vm: 'vm', datetime: xoDatetime(arrival - 8 * DAY + HOUR) });
    const mirroredConfig = await writeConfigBackup(remote.root, 'sched', xoDatetime(arrival - 8 * DAY + HOUR));
    const late = [...mirrored.units, ...mirroredConfig.units];
    await waitFor(() => allImmutable(late), 'the mirrored backups to be locked');
    expect([...old.units, ...oldConfig.units].some(isImmutable)).toBe(false);
    await running.daemon.stop();
    // A restart finds them recorded: not the first start, nothing said, nothing dated again.
    const again = await startDaemon(remote);
    expect(again.logs.some((l) => l.msg.includes('watched for the first time'))).toBe(false);
    await again.daemon.stop();

    // verify counts the mirror as a restore point inside its window: a unit of it unlocked by hand is a finding.
    const disk = mirrored.units.find((u) => u.endsWith('.vhd'))!;
    execFileSync('chattr', ['-i', disk]);
    const context = await openRemoteContext(running.config.remotes[0]!, running.config.indexPath);
    const { findings } = await verifyRemote(context, attributes, { now: Date.now(), jsonSettleMs: 5_000 });
    expect(findings.filter((f) => f.kind === 'unrestorable').map((f) => f.path)).toEqual([mirrored.label]);
    execFileSync('chattr', ['+i', disk]);

    // A minute before the window from arrival ends, nothing of them goes; a minute after, all of them.
    expect(await lift(running, arrival + WEEK - 60_000)).toEqual([]);
    expect(allImmutable(late)).toBe(true);
    expect(await lift(running, Date.now() + WINDOW + 60_000)).toEqual(
      expect.arrayContaining([mirrored.label, mirroredConfig.label]),
    );
    expect(late.some(isImmutable)).toBe(false);
  });

  it('locks a backup written while the daemon was stopped for a whole window from the restart', async () => {
    const remote = await tempRemote();
    await writeVmBackup(remote.root, { vm: 'vm', datetime: xoDatetime(Date.now() - HOUR) });
    const first = await startDaemon(remote);
    await first.daemon.stop();
    // Taken six days ago, transferred while the daemon was stopped: by name it would have one day left.
    const caughtUp = await writeVmBackup(remote.root, { vm: 'vm', datetime: xoDatetime(Date.now() - 6 * DAY) });
    const restart = Date.now();
    const running = await startDaemon(remote);
    await waitFor(() => allImmutable(caughtUp.units), 'the backup written meanwhile to be locked');
    await running.daemon.stop();

    // The backup there at the first start goes a week after its name; the one caught up stays.
    expect(await lift(running, restart + 2 * DAY)).toEqual([]);
    expect(await lift(running, restart + WEEK - 60_000)).not.toEqual(expect.arrayContaining([caughtUp.label]));
    expect(allImmutable(caughtUp.units)).toBe(true);
    expect(await lift(running, Date.now() + WINDOW + 60_000)).toEqual(expect.arrayContaining(caughtUp.units));
  });

  it('keeps a base locked until the newest backup built on it has had its whole window', async () => {
    const remote = await tempRemote();
    // The base was there at the first start, five days old; its delta, taken four days ago, arrives later.
    const [base] = await writeVhdChain(remote.root, 'vm', 'vdi', [xoDatetime(Date.now() - 5 * DAY)]);
    const running = await startDaemon(remote);
    await waitFor(() => allImmutable([base!.json, base!.alias, base!.directory]), 'the base to be locked');
    const arrival = Date.now();
    const [delta] = await writeVhdChain(remote.root, 'vm', 'vdi', [base!.datetime, xoDatetime(Date.now() - 4 * DAY)], {
      already: [base!.datetime],
    });
    await waitFor(() => allImmutable([delta!.json, delta!.alias, delta!.directory]), 'the delta to be locked');
    await running.daemon.stop();

    // Three days on, the base's own window (by its name) is over, the delta's from its arrival is not.
    const freed = await lift(running, arrival + 3 * DAY);
    expect(freed).not.toContain(base!.directory);
    expect(isImmutable(base!.directory)).toBe(true);
    expect(await lift(running, arrival + WEEK - 60_000)).not.toContain(base!.directory);
    expect(await lift(running, Date.now() + WINDOW + 60_000)).toEqual(
      expect.arrayContaining([base!.directory, delta!.directory]),
    );
  });

  it('locks a backup found within the slack of its name with no window record, and keeps its window from its name', async () => {
    const remote = await tempRemote();
    // The first start: what is there is dated by its name; nothing is, so everything written next arrives.
    await (await startDaemon(remote)).daemon.stop();
    const running = await startDaemon(remote);
    const arrival = Date.now();
    // XO names a backup by when its run started: this one finished 10 minutes later, within the slack.
    const promptName = xoDatetime(Date.now() - 10 * 60_000);
    const prompt = await writeVmBackup(remote.root, { vm: 'prompt', datetime: promptName });
    // This one took longer than the slack: its arrival counts, recorded by identity.
    const late = await writeVmBackup(remote.root, { vm: 'late', datetime: xoDatetime(Date.now() - SLACK - HOUR) });
    await waitFor(() => allImmutable([...prompt.units, ...late.units]), 'both backups to be locked');
    await running.daemon.stop();
    const named = parseBackupDatetime(promptName)!;

    const context = await openRemoteContext(running.config.remotes[0]!, running.config.indexPath);
    const recordOf = (unit: string) => context.index.windows.read(identityOf(statSync(unit, { bigint: true })));
    for (const unit of prompt.units) expect(await recordOf(unit), unit).toBeUndefined();
    for (const unit of late.units) expect((await recordOf(unit))?.until, unit).toBeGreaterThanOrEqual(arrival + WINDOW);
    expect(windowFiles(context.index.windows.folder)).toHaveLength(late.units.length);

    // A restart past the slack finds it locked by its name: not taken as arriving now, no record written.
    const again = await startDaemon(remote, { clock: { now: () => named + SLACK + HOUR } });
    await again.daemon.stop();
    expect(windowFiles(context.index.windows.folder)).toHaveLength(late.units.length);

    // Past its name + the duration, inside the slack: kept. Past the slack: unlocked; the late one is kept.
    expect(await lift(running, named + WEEK + 1)).toEqual([]);
    expect(allImmutable(prompt.units)).toBe(true);
    expect((await lift(running, named + WINDOW + 1)).sort()).toEqual([...prompt.units].sort());
    expect(prompt.units.some(isImmutable)).toBe(false);
    expect(allImmutable(late.units)).toBe(true);
  });
});
