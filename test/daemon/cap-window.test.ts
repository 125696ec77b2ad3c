import { readdir, rename } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { openRemoteContext } from '../../src/context/open.js';
import { xoDatetime } from '../../src/demo/sample-remote.js';
import { liftRemote } from '../../src/lift/apply.js';
import { asAttacker, handRemoteToAttacker, writeAsAttacker } from '../support/attacker.js';
import { windowMsOf } from '../../src/remote/model.js';
import { DAY, startDaemon } from '../support/daemon.js';
import { allImmutable, tempRemote, waitFor } from '../support/remote.js';
import { writeVhdChain } from '../support/vhd-chain.js';

const HOUR = 3_600_000;
const attributes = new IoctlAdapter();

async function countEntries(indexFolder: string): Promise<number> {
  let count = 0;
  for (const day of await readdir(indexFolder, { withFileTypes: true }))
    if (day.isDirectory() && /^\d{4}-\d{2}-\d{2}$/.test(day.name))
      count += (await readdir(path.join(indexFolder, day.name))).length;
  return count;
}

// Hole 3 of issue 21: at maxIndexEntries, a delta's claim on a base already indexed must still extend the base's
// window (a new entry for a unit already indexed is a re-dating, not a new entry; window records never depend on
// the cap), or lift frees the base while the delta needs it.
describe('a chain at the index cap', () => {
  it("keeps a delta's base locked for the delta's window once junk jsons filled the cap", async () => {
    const remote = await tempRemote();
    const base = Date.now() - 23 * HOUR;
    const delta = Date.now() - 10 * 60_000;
    const [first, second] = await writeVhdChain(remote.root, 'vm', 'vdi', [xoDatetime(base), xoDatetime(delta)]);
    // The delta's json comes later: first the base is locked and the cap filled.
    const deltaJson = second!.json;
    const aside = path.join(remote.base, 'delta.json');
    await rename(deltaJson, aside);
    const remotes = [
      { id: 'r', root: remote.root, immutabilityDurationMs: DAY, rebuildIndexOnStart: false, maxIndexEntries: 8 },
    ];
    await handRemoteToAttacker(remote);
    const { daemon, logs, config } = await startDaemon(remote, { config: { remotes } });
    await waitFor(() => allImmutable([first!.json, first!.alias, first!.directory]), 'the base backup to be locked');

    // The attacker (an unprivileged user owning the remote) fills the cap with jsons of its own.
    for (let i = 0; i < 8; i++) {
      const folder = path.join(remote.root, 'xo-vm-backups', `junk-${i}`);
      asAttacker('mkdir', ['--', folder]);
      writeAsAttacker(path.join(folder, `${xoDatetime(Date.now() - HOUR)}.json`), '{}');
    }
    await waitFor(
      () => logs.some((l) => l.cap === 'maxIndexEntries' && l.level === 'error'),
      'the index cap to be reached',
    );
    expect(await countEntries(path.join(remote.indexPath, 'r'))).toBe(8);

    // XO's next run: a delta on the base.
    await rename(aside, deltaJson);
    await waitFor(() => allImmutable([deltaJson, second!.alias, second!.directory]), 'the delta to be locked');
    await daemon.stop();
    // Re-dating the base's entries made no new one.
    expect(await countEntries(path.join(remote.indexPath, 'r'))).toBe(8);

    // A minute after the base's own window: the delta still needs it for 23 hours.
    const report = await liftRemote(await openRemoteContext(config.remotes[0]!, config.indexPath), attributes, {
      now: base + windowMsOf(DAY) + 60_000,
      dryRun: false,
      all: false,
    });
    expect(report.unlocked.map((u) => u.path)).not.toContain(first!.directory);
    expect(allImmutable([first!.alias, first!.directory, second!.alias, second!.directory])).toBe(true);
  });

  it('extends the window of a base locked earlier the same day, when a delta of that day claims it', async () => {
    const remote = await tempRemote();
    // Both runs on one UTC day (the clock is set to its evening), so they share a day bucket.
    const now = Date.UTC(2026, 10, 22, 20);
    const base = Date.UTC(2026, 10, 22, 1);
    const delta = Date.UTC(2026, 10, 22, 19);
    const [first, second] = await writeVhdChain(remote.root, 'vm', 'vdi', [xoDatetime(base), xoDatetime(delta)]);
    const aside = path.join(remote.base, 'delta.json');
    await rename(second!.json, aside);
    const remotes = [{ id: 'r', root: remote.root, immutabilityDurationMs: DAY, rebuildIndexOnStart: false }];
    const { daemon, config } = await startDaemon(remote, { config: { remotes }, clock: { now: () => now } });
    await waitFor(() => allImmutable([first!.json, first!.alias, first!.directory]), 'the base backup to be locked');
    await rename(aside, second!.json);
    await waitFor(() => allImmutable([second!.json, second!.alias, second!.directory]), 'the delta to be locked');
    await daemon.stop();

    const report = await liftRemote(await openRemoteContext(config.remotes[0]!, config.indexPath), attributes, {
      now: base + windowMsOf(DAY) + 60_000,
      dryRun: false,
      all: false,
    });
    expect(report.unlocked.map((u) => u.path)).toEqual([first!.json]);
    expect(allImmutable([first!.alias, first!.directory])).toBe(true);
  });
});
