import { lstatSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { openRemoteContext } from '../../src/context/open.js';
import { liftRemote } from '../../src/lift/apply.js';
import { xoDatetime } from '../../src/demo/sample-remote.js';
import { dayOf } from '../../src/index/entry.js';
import { IndexStore } from '../../src/index/store.js';
import { createLogger } from '../../src/log/logger.js';
import type { LeafFolder } from '../../src/protect/context.js';
import { lockUnits } from '../../src/protect/locker.js';
import { reconcileFolder } from '../../src/protect/reconcile.js';
import { parseBackupDatetime } from '../../src/remote/datetime.js';
import { identityOf } from '../../src/remote/identity.js';
import { DAY, startDaemon } from '../support/daemon.js';
import { FakeAttributes } from '../support/fake-attributes.js';
import { indexAsLocked } from '../support/index-entry.js';
import { allImmutable, isImmutable, tempRemote } from '../support/remote.js';
import { writeVhdChain } from '../support/vhd-chain.js';
import { windowMsOf } from '../../src/remote/model.js';
import { remoteContextOf } from '../support/remote-context.js';

const HOUR = 3_600_000;

// A delta claims the VHDs of its chain, already locked for their own backup: they are re-dated (entry and window moved
// to the delta), not locked again, so a catch-up of N deltas runs the flag helper on their own units only.
describe("a chain's units already locked for an older backup", () => {
  it('are re-dated to the newer backup without the flag helper, but for directories; a full proof asks for them all', async () => {
    const remote = await tempRemote();
    const [base, delta] = await writeVhdChain(remote.root, 'vm', 'vdi', [
      xoDatetime(Date.now() - 2 * HOUR),
      xoDatetime(Date.now() - HOUR),
    ]);
    const baseInstant = parseBackupDatetime(base!.datetime)!;
    const deltaInstant = parseBackupDatetime(delta!.datetime)!;
    for (const unit of [base!.json, base!.alias, base!.directory])
      await indexAsLocked(remote.indexPath, unit, { json: base!.json, instant: baseInstant });
    const index = new IndexStore(remote.indexPath, 'r');
    await index.open();
    const folder: LeafFolder = {
      remote: remoteContextOf(remote.root, index, DAY),
      kind: 'vm',
      path: path.dirname(base!.json),
    };
    const options = { now: Date.now(), jsonSettleMs: 0 };

    const report = await reconcileFolder(folder, options);
    const redated = report.requests.filter((r) => r.lockedAs !== undefined).map((r) => r.unit);
    // A file only: a VHD directory goes through the flag helper again, which alone can say its whole tree is locked (a
    // lift or hold that stopped part-way clears what is below and leaves the top folder and its entry as they were).
    expect(redated).toEqual([base!.alias]);
    expect(report.requests.map((r) => r.unit).sort()).toEqual(
      [base!.alias, base!.directory, delta!.json, delta!.alias, delta!.directory].sort(),
    );
    // A full proof reads flags: no unit is taken as locked on its entry alone there.
    const full = await reconcileFolder(folder, { ...options, full: true });
    expect(full.requests.filter((r) => r.lockedAs !== undefined)).toEqual([]);

    const attributes = new FakeAttributes();
    const results = await lockUnits(report.requests, attributes, { now: () => Date.now() }, createLogger('silent'));
    expect(results.every((r) => r.outcome.status === 'ok' && r.indexed)).toBe(true);
    expect(attributes.calls.flatMap((c) => c.targets.map((t) => t.path)).sort()).toEqual(
      [base!.directory, delta!.json, delta!.alias, delta!.directory].sort(),
    );
    for (const unit of redated) {
      const identity = identityOf(lstatSync(unit, { bigint: true }));
      const entry = await index.read(dayOf(deltaInstant), unit);
      expect(entry).toMatchObject({ state: 'locked', backup: delta!.json, identity: { ino: identity.ino } });
      expect(Date.parse(entry!.backupDatetime)).toBe(deltaInstant);
      // Its window by identity now runs from the delta, so moving its folder cannot shorten it.
      expect(await index.windows.read(identity)).toEqual({ until: deltaInstant + windowMsOf(DAY), path: unit });
    }
  });

  // The daemon's lift pass takes its turn between a round's reconcile and its lock batch (rounds overlap: the next one
  // is reconciled while one locks). A unit the reconcile found locked for its older backup may be unlocked by that
  // pass, its older backup's window over: the batch must not report it locked on what the reconcile saw.
  it('are locked through the flag helper when a lift unlocked them after the reconcile', async () => {
    const remote = await tempRemote();
    const attributes = new IoctlAdapter();
    const t = Date.now() - 3 * DAY;
    const remotes = [
      {
        id: 'r',
        root: remote.root,
        immutabilityDurationMs: DAY,
        rebuildIndexOnStart: false,
        windowStart: 'name' as const,
      },
    ];
    const [base] = await writeVhdChain(remote.root, 'vm', 'vdi', [xoDatetime(t)]);
    const { daemon, config } = await startDaemon(remote, { clock: { now: () => t + HOUR }, config: { remotes } });
    await daemon.stop();
    expect(allImmutable([base!.json, base!.alias, base!.directory])).toBe(true);
    await writeVhdChain(remote.root, 'vm', 'vdi', [xoDatetime(t), xoDatetime(Date.now() - HOUR)], {
      already: [xoDatetime(t)],
    });
    const context = await openRemoteContext(config.remotes[0]!, config.indexPath);
    const folder: LeafFolder = { remote: context, kind: 'vm', path: path.dirname(base!.json) };
    const now = Date.now();

    const report = await reconcileFolder(folder, { now, jsonSettleMs: 0 });
    expect(report.requests.find((r) => r.unit === base!.alias)?.lockedAs).toBeDefined();
    // The lift's turn: the base's window is over, and no entry says yet that the delta claims its alias.
    const lifted = await liftRemote(context, attributes, { now, dryRun: false, all: false });
    expect(lifted.unlocked.map((u) => u.path)).toContain(base!.alias);
    expect(isImmutable(base!.alias)).toBe(false);

    const results = await lockUnits(report.requests, attributes, { now: () => now }, createLogger('silent'));
    expect(results.find((r) => r.request.unit === base!.alias)).toMatchObject({
      outcome: { status: 'ok' },
      indexed: true,
    });
    expect(isImmutable(base!.alias)).toBe(true);
  });
});
