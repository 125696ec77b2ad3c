import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { openRemoteContext } from '../../src/context/open.js';
import { writeConfigBackup, writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { liftRemote } from '../../src/lift/apply.js';
import { windowMsOf } from '../../src/remote/model.js';
import type { Config } from '../../src/config/schema.js';
import { DAY, startDaemon, type LogLine } from '../support/daemon.js';
import { allImmutable, isImmutable, tempRemote, waitFor, type TestRemote } from '../support/remote.js';
import { writeVhdChain } from '../support/vhd-chain.js';

const HOUR = 3_600_000;
// A window of the one-day duration: the duration + its slack.
const WINDOW = windowMsOf(DAY);
const FUTURE = '99991231T235959Z';
const attributes = new IoctlAdapter();
const oneDay = (remote: TestRemote) => [
  { id: 'r', root: remote.root, immutabilityDurationMs: DAY, rebuildIndexOnStart: false },
];

function warned(logs: readonly LogLine[], json: string): boolean {
  return logs.some((l) => l.security === true && l.path === json && /later than now \+ maxClockJump/.test(l.msg));
}

// A lift pass after the daemon stopped, as of `now`: the paths it unlocked.
async function lift(running: { config: Config }, now: number): Promise<string[]> {
  const context = await openRemoteContext(running.config.remotes[0]!, running.config.indexPath);
  return (await liftRemote(context, attributes, { now, dryRun: false, all: false })).unlocked.map((u) => u.path).sort();
}

// Hole 4 of issue 21: a junk backup named in the year 9999 must not pin what it claims. Its own units are locked from
// when it arrived, for the duration; it extends no other unit's window (chains, claims by name).
describe('a backup named in the future', () => {
  it('keeps a base it names as parent locked only for the base own window (plain remote)', async () => {
    const remote = await tempRemote();
    const base = Date.now() - 23 * HOUR;
    const arrival = Date.now();
    // The junk delta: its header names the real base's alias as parent.
    const [real, junk] = await writeVhdChain(remote.root, 'vm', 'vdi', [xoDatetime(base), FUTURE]);
    const running = await startDaemon(remote, { config: { remotes: oneDay(remote) } });
    const { daemon, logs } = running;
    const realUnits = [real!.json, real!.alias, real!.directory];
    const junkUnits = [junk!.json, junk!.alias, junk!.directory];
    await waitFor(() => allImmutable([...realUnits, ...junkUnits]), 'both backups to be locked');
    await waitFor(() => warned(logs, junk!.json), 'a security warning naming the future-named json');
    await daemon.stop();

    // A minute past the base's own window: it goes; the future-named backup arrived 23 hours later and stays.
    expect(await lift(running, base + WINDOW + 60_000)).toEqual([...realUnits].sort());
    expect(realUnits.some((u) => isImmutable(u))).toBe(false);
    expect(allImmutable(junkUnits)).toBe(true);
    // A minute past its window from its arrival, not from its name.
    expect(await lift(running, arrival + WINDOW + 60_000)).toEqual([...junkUnits].sort());
  });

  it('does not pin its VDI folder through claims by name (encrypted remote)', async () => {
    const remote = await tempRemote();
    await writeFile(path.join(remote.root, 'encryption.json'), '{"algorithm":"aes-256-gcm"}');
    await writeFile(path.join(remote.root, 'metadata.json'), 'ciphertext');
    const base = Date.now() - 23 * HOUR;
    const arrival = Date.now();
    const real = await writeVmBackup(remote.root, {
      vm: 'vm',
      datetime: xoDatetime(base),
      encrypted: true,
      disks: [{ type: 'vhd-directory' }],
    });
    // The junk alias, its finished VHD directory and its json, in the real backup's VDI folder, all ciphertext.
    const vdi = path.dirname(real.units.find((u) => u.endsWith('.alias.vhd'))!);
    const directory = path.join(vdi, 'data', `${FUTURE}.vhd`);
    await mkdir(directory, { recursive: true });
    for (const part of ['header', 'footer', 'bat']) await writeFile(path.join(directory, part), Buffer.alloc(64, 0xff));
    await writeFile(path.join(vdi, `${FUTURE}.alias.vhd`), Buffer.alloc(64, 0xfe));
    const json = path.join(remote.root, 'xo-vm-backups', 'vm', `${FUTURE}.json`);
    await writeFile(json, Buffer.alloc(64, 0xfd));
    const junkUnits = [json, path.join(vdi, `${FUTURE}.alias.vhd`), directory];

    const running = await startDaemon(remote, { config: { remotes: oneDay(remote), jsonSettleMs: 300 } });
    const { daemon, logs } = running;
    await waitFor(() => allImmutable([...real.units, ...junkUnits]), 'both backups to be locked');
    await waitFor(() => warned(logs, json), 'a security warning naming the future-named json');
    await daemon.stop();

    expect(await lift(running, base + WINDOW + 60_000)).toEqual([...real.units].sort());
    expect(real.units.some((u) => isImmutable(u))).toBe(false);
    expect(allImmutable(junkUnits)).toBe(true);
    expect(await lift(running, arrival + WINDOW + 60_000)).toEqual([...junkUnits].sort());
  });

  it('locks a config backup folder named in the future from its arrival, not until its name', async () => {
    const remote = await tempRemote();
    const arrival = Date.now();
    const junk = await writeConfigBackup(remote.root, 'schedule', FUTURE);
    const running = await startDaemon(remote, { config: { remotes: oneDay(remote) } });
    await waitFor(() => allImmutable(junk.units), 'the config backup to be locked');
    await waitFor(() => warned(running.logs, junk.label), 'a security warning naming it');
    await running.daemon.stop();

    expect(await lift(running, arrival + DAY - HOUR)).toEqual([]);
    expect(allImmutable(junk.units)).toBe(true);
    expect(await lift(running, arrival + WINDOW + 60_000)).toEqual([junk.label]);
    expect(junk.units.some((u) => isImmutable(u))).toBe(false);
  });
});
