import { describe, expect, it } from 'vitest';
import { backupsOf, neededBy } from '../../src/backup/vm.js';
import type { VmSnapshot } from '../../src/backup/snapshot.js';
import { planVm, type LookedAt, type PlanFacts } from '../../src/protect/vm-plan.js';
import { chainSnapshot, DELTA, FULL, json, NEWEST, NOW, VDI } from '../support/snapshot.js';

// The reconcile's pure plan (protect/vm-plan.ts) on a snapshot written out by hand: what it claims, for which backup.
const FOLDER = '/remote/xo-vm-backups/vm';
const facts: PlanFacts = { folder: FOLDER, now: NOW, jsonSettleMs: 600_000, protectChains: true };

function looked(snapshot: VmSnapshot, datetimes: readonly string[], alreadyLocked = false): LookedAt[] {
  return backupsOf(snapshot)
    .filter((b) => datetimes.includes(b.datetime))
    .map((backup) => ({ backup, instant: backup.instant, namedInTheFuture: false, alreadyLocked }));
}

const claimed = (plan: ReturnType<typeof planVm>): Record<string, string> =>
  Object.fromEntries(plan.claims.map((c) => [c.unit.path, c.backup.datetime]));

describe("the reconcile's plan", () => {
  it('claims the newest backup, its aliases, their directories and its whole chain; the chain is known', () => {
    const snapshot = chainSnapshot();
    const plan = planVm(snapshot, looked(snapshot, [NEWEST]), facts);
    expect(Object.keys(claimed(plan)).sort()).toEqual(
      [
        `${NEWEST}.json`,
        ...[FULL, DELTA, NEWEST].flatMap((dt) => [`${VDI}/${dt}.alias.vhd`, `${VDI}/data/${dt}.vhd`]),
      ].sort(),
    );
    expect(plan.claims.find((c) => c.unit.path === `${VDI}/data/${FULL}.vhd`)?.unit.recursive).toBe(true);
    expect(plan.provable).toEqual([
      { json: `${FOLDER}/${NEWEST}.json`, identity: snapshot.jsons.get(`${NEWEST}.json`)!.identity },
    ]);
    expect(plan).toMatchObject({ chainUnknown: false, flatVhds: false, refusals: [], missing: new Set() });
  });

  it('claims nothing of an unfinished json, and says when to look again', () => {
    const jsons = new Map(chainSnapshot().jsons);
    jsons.set(`${NEWEST}.json`, json('{"half', NOW - 60_000));
    const snapshot = chainSnapshot({ jsons });
    const plan = planVm(snapshot, looked(snapshot, [NEWEST]), facts);
    expect(plan.claims).toEqual([]);
    expect(plan.recheckAt).toBe(NOW + 540_000);
    // Locked as indexed, the same json is complete: its units are claimed again.
    expect(planVm(snapshot, looked(snapshot, [NEWEST], true), facts).claims.length).toBeGreaterThan(0);
  });

  it('refuses an alias pointing out of its VDI folder, and never claims what it names', () => {
    const aliases = new Map(chainSnapshot().aliases);
    aliases.set(`${VDI}/${DELTA}.alias.vhd`, { outside: '"/etc"' });
    const snapshot = chainSnapshot({ aliases });
    const plan = planVm(snapshot, looked(snapshot, [DELTA]), facts);
    expect(plan.refusals).toEqual([
      expect.objectContaining({ path: `${FOLDER}/${VDI}/${DELTA}.alias.vhd`, security: true }),
    ]);
    expect(Object.keys(claimed(plan))).not.toContain('/etc');
  });

  it('counts a unit the json names but the folder lacks as missing, and a chain it cannot read as unknown', () => {
    const jsons = new Map(chainSnapshot().jsons);
    jsons.set(`${NEWEST}.json`, json({ vhds: { x: `${VDI}/${NEWEST}.alias.vhd`, y: `${VDI}/gone.vhd` } }));
    const links = new Map(chainSnapshot().links);
    links.set(`${VDI}/${NEWEST}.alias.vhd`, { kind: 'unknown', why: 'damaged' });
    const snapshot = chainSnapshot({ jsons, links });
    const plan = planVm(snapshot, looked(snapshot, [NEWEST]), facts);
    expect(plan.missing).toEqual(new Set([`${FOLDER}/${NEWEST}.json`]));
    expect(plan.chainUnknown).toBe(true);
    // The safe side: every older VHD of the folder.
    expect(claimed(plan)[`${VDI}/${FULL}.alias.vhd`]).toBe(NEWEST);
  });

  it('proves nothing of a selected json gone before its read: it is missing, looked at again, never complete', () => {
    const jsons = new Map(chainSnapshot().jsons);
    const { size, identity } = jsons.get(`${NEWEST}.json`)!;
    jsons.set(`${NEWEST}.json`, { size, identity, mtimeMs: NOW - 3_600_000, unread: true });
    const snapshot = chainSnapshot({ jsons });
    const plan = planVm(snapshot, looked(snapshot, [NEWEST]), facts);
    expect(plan.missing).toEqual(new Set([`${FOLDER}/${NEWEST}.json`]));
    expect(plan.provable).toEqual([]);
    expect(plan.claims).toEqual([]);
  });

  it('gives a backup named in the future only what carries its own name, and no chain', () => {
    const snapshot = chainSnapshot();
    const future = looked(snapshot, [NEWEST]).map((item) => ({ ...item, namedInTheFuture: true, instant: NOW }));
    const plan = planVm(snapshot, future, facts);
    expect(Object.keys(claimed(plan)).every((p) => p.split('/').pop()!.startsWith(NEWEST))).toBe(true);
    expect(plan.warnings).toEqual([expect.objectContaining({ path: `${FOLDER}/${NEWEST}.json`, security: true })]);
  });

  it('claims no chain when chains are not protected', () => {
    const snapshot = chainSnapshot();
    const plan = planVm(snapshot, looked(snapshot, [NEWEST]), { ...facts, protectChains: false });
    expect(Object.keys(claimed(plan)).some((p) => p.includes(FULL))).toBe(false);
    expect(plan.chainUnknown).toBeUndefined();
  });

  it('claims what the backup model says the backup needs, an alias target gone included (when in doubt, protect)', () => {
    const aliases = new Map(chainSnapshot().aliases);
    aliases.set(`${VDI}/${DELTA}.alias.vhd`, { path: `${VDI}/data/${DELTA}.vhd`, type: 'missing' });
    const snapshot = chainSnapshot({ aliases });
    const plan = planVm(snapshot, looked(snapshot, [NEWEST]), facts);
    const needed = neededBy(
      snapshot,
      backupsOf(snapshot).find((b) => b.datetime === NEWEST)!,
    );
    expect(Object.keys(claimed(plan)).sort()).toEqual(needed.map((u) => u.path).sort());
    // Claimed as the directory XO points aliases at: the reconcile finds it gone and looks again.
    expect(plan.claims.find((c) => c.unit.path === `${VDI}/data/${DELTA}.vhd`)?.unit.recursive).toBe(true);
  });
});
