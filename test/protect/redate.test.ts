import { lstatSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { xoDatetime } from '../../src/demo/sample-remote.js';
import { dayOf } from '../../src/index/entry.js';
import { IndexStore } from '../../src/index/store.js';
import { createLogger } from '../../src/log/logger.js';
import type { LeafFolder } from '../../src/protect/context.js';
import { lockUnits } from '../../src/protect/locker.js';
import { reconcileFolder } from '../../src/protect/reconcile.js';
import { parseBackupDatetime } from '../../src/remote/datetime.js';
import { identityOf } from '../../src/remote/identity.js';
import { DAY } from '../support/daemon.js';
import { FakeAttributes } from '../support/fake-attributes.js';
import { indexAsLocked } from '../support/index-entry.js';
import { tempRemote } from '../support/remote.js';
import { writeVhdChain } from '../support/vhd-chain.js';

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
      remote: { id: 'r', root: remote.root, realRoot: remote.root, durationMs: DAY, index, encrypted: false },
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
      expect(await index.windows.read(identity)).toEqual({ until: deltaInstant + DAY, path: unit });
    }
  });
});
