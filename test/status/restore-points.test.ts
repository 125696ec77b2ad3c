import { describe, expect, it } from 'vitest';
import {
  judgeRemote,
  judgeRestorePoint,
  type RestorePointModel,
  type UnitFacts,
} from '../../src/status/restore-points.js';

const NOW = Date.parse('2026-12-10T00:00:00Z');
const DAY = 86_400_000;

const locked = (until: number): UnitFacts => ({
  exists: true,
  unchangedSinceLock: true,
  immutable: true,
  indexedUntil: until,
});

// A delta of yesterday on a full of 10 days ago: own json and alias+directory, chain the full's alias+directory.
const point: RestorePointModel = {
  backup: '20261209T000000Z.json',
  instant: NOW - DAY,
  own: ['20261209T000000Z.json', 'vdis/j/v/20261209T000000Z.alias.vhd', 'vdis/j/v/data/20261209T000000Z.vhd'],
  chain: ['vdis/j/v/20261130T000000Z.alias.vhd', 'vdis/j/v/data/20261130T000000Z.vhd'],
  chainKnown: true,
};
const until = NOW + 6 * DAY;

function units(overrides: Record<string, UnitFacts> = {}): Map<string, UnitFacts> {
  const all = new Map<string, UnitFacts>([...point.own, ...point.chain].map((p) => [p, locked(until)]));
  for (const [p, facts] of Object.entries(overrides)) all.set(p, facts);
  return all;
}
const base = 'vdis/j/v/data/20261130T000000Z.vhd';

describe('judgeRestorePoint', () => {
  it('everything locked and unchanged: protected until the first unit the lift may unlock', () => {
    expect(judgeRestorePoint(point, units(), NOW)).toEqual({ until });
    expect(judgeRestorePoint(point, units({ [base]: locked(NOW + DAY) }), NOW)).toEqual({ until: NOW + DAY });
  });

  it('a VHD directory a repair lift began clearing: unit-unlocked, though its top folder is still locked', () => {
    const directory = point.own[2]!;
    expect(judgeRestorePoint(point, units({ [directory]: { ...locked(until), unlocking: true } }), NOW)).toEqual({
      reason: 'unit-unlocked',
    });
  });

  it('a unit gone, or never listed: unit-missing', () => {
    expect(judgeRestorePoint(point, units({ [base]: { exists: false, unchangedSinceLock: false } }), NOW)).toEqual({
      reason: 'unit-missing',
    });
    const without = units();
    without.delete(point.own[1]!);
    expect(judgeRestorePoint(point, without, NOW)).toEqual({ reason: 'unit-missing' });
  });

  it('the base past its lock (never indexed, or its window over): base-expired', () => {
    const mutable: UnitFacts = { exists: true, unchangedSinceLock: false, immutable: false };
    expect(judgeRestorePoint(point, units({ [base]: mutable }), NOW)).toEqual({ reason: 'base-expired' });
    expect(judgeRestorePoint(point, units({ [base]: { ...mutable, indexedUntil: NOW - 1 } }), NOW)).toEqual({
      reason: 'base-expired',
    });
    // Still locked, but due: the next lift pass unlocks it.
    expect(judgeRestorePoint(point, units({ [base]: locked(NOW) }), NOW)).toEqual({ reason: 'base-expired' });
  });

  it('a unit whose lock is still due but is mutable (chattr -i by hand), or an own unit never locked: unit-unlocked', () => {
    const unlocked: UnitFacts = { exists: true, unchangedSinceLock: false, immutable: false, indexedUntil: until };
    expect(judgeRestorePoint(point, units({ [base]: unlocked }), NOW)).toEqual({ reason: 'unit-unlocked' });
    const fresh: UnitFacts = { exists: true, unchangedSinceLock: false, immutable: false };
    expect(judgeRestorePoint(point, units({ [point.own[2]!]: fresh }), NOW)).toEqual({ reason: 'unit-unlocked' });
  });

  it('the very inode indexed and unchanged, but its flag off (an entry for a unit never locked): unit-unlocked', () => {
    const indexedOnly: UnitFacts = { exists: true, unchangedSinceLock: true, immutable: false, indexedUntil: until };
    expect(judgeRestorePoint(point, units({ [point.own[2]!]: indexedOnly }), NOW)).toEqual({ reason: 'unit-unlocked' });
    // A flag that could not be read is not a flag on.
    const unread: UnitFacts = { exists: true, unchangedSinceLock: true, indexedUntil: until };
    expect(judgeRestorePoint(point, units({ [point.own[2]!]: unread }), NOW)).toEqual({ reason: 'unit-unlocked' });
  });

  it('immutable but not the inode or state locked (replaced, altered and locked again): unit-changed', () => {
    const relocked: UnitFacts = { exists: true, unchangedSinceLock: false, immutable: true, indexedUntil: until };
    expect(judgeRestorePoint(point, units({ [base]: relocked }), NOW)).toEqual({ reason: 'unit-changed' });
  });

  it('a chain that cannot be read: chain-unknown, never protected, unless something worse is known', () => {
    const unknown = { ...point, chain: [], chainKnown: false };
    expect(judgeRestorePoint(unknown, units(), NOW)).toEqual({ reason: 'chain-unknown' });
    const gone = units({ [point.own[0]!]: { exists: false, unchangedSinceLock: false } });
    expect(judgeRestorePoint(unknown, gone, NOW)).toEqual({ reason: 'unit-missing' });
  });

  it('the worst reason wins: missing over unlocked over changed over expired', () => {
    const facts = units({
      [point.own[1]!]: { exists: true, unchangedSinceLock: false, immutable: true, indexedUntil: until },
      [base]: { exists: true, unchangedSinceLock: false, immutable: false },
    });
    expect(judgeRestorePoint(point, facts, NOW)).toEqual({ reason: 'unit-changed' });
    facts.set(point.own[2]!, { exists: false, unchangedSinceLock: false });
    expect(judgeRestorePoint(point, facts, NOW)).toEqual({ reason: 'unit-missing' });
  });
});

describe('judgeRemote', () => {
  it('counts per VM and per remote; protectedUntil is the latest protection; VMs with nothing in window left out', () => {
    const older = { ...point, backup: '20261208T000000Z.json', instant: NOW - 2 * DAY };
    const facts = units();
    const judged = judgeRemote(
      [
        { vm: 'b', points: [point, older], units: facts },
        { vm: 'a', points: [{ ...point, chainKnown: false, chain: [] }], units: facts },
        { vm: 'c', points: [], units: new Map() },
      ],
      NOW,
    );
    expect(judged).toEqual({
      inWindow: 3,
      protected: 2,
      unprotected: 1,
      chainUnknown: 1,
      vms: [
        {
          vm: 'a',
          inWindow: 1,
          protected: 0,
          protectedUntil: null,
          unprotected: [{ backup: point.backup, reason: 'chain-unknown' }],
        },
        { vm: 'b', inWindow: 2, protected: 2, protectedUntil: new Date(until).toISOString(), unprotected: [] },
      ],
    });
  });
});
