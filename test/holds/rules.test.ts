import { describe, expect, it } from 'vitest';
import {
  heldUntil,
  MAX_HOLD_MS,
  newHold,
  parseHold,
  parseHoldDuration,
  parseVm,
  reviewHolds,
  vmOfPath,
  type Hold,
} from '../../src/holds/rules.js';

const VM = '0b6a3d3e-1c1f-4c8e-9d43-2f6a1e7b9c01';
const OTHER = '7f1e2d3c-4b5a-4968-8776-655443322110';
const T0 = Date.parse('2026-12-01T10:00:00.000Z');
const HOUR = 3_600_000;

function hold(vm: string, hours: number, id = `id-${vm}`): Hold {
  return newHold({ remote: 'r', vm, since: T0, ms: hours * HOUR, by: 'admin', id });
}

describe('hold rules (pure)', () => {
  it('builds a hold from its start and length, and reads back only a hold on the VM named', () => {
    const made = newHold({ remote: 'r', vm: VM, since: T0, ms: HOUR, by: 'admin', id: 'x', reason: 'chain' });
    expect(made).toEqual({
      version: 1,
      remote: 'r',
      vm: VM,
      since: '2026-12-01T10:00:00.000Z',
      until: '2026-12-01T11:00:00.000Z',
      by: 'admin',
      reason: 'chain',
      id: 'x',
    });
    expect(parseHold(JSON.stringify(made), VM.toUpperCase())).toEqual(made);
    // When in doubt, protect: a hold on another VM, a damaged file or a bad date holds nothing.
    expect(parseHold(JSON.stringify(made), OTHER)).toBeUndefined();
    expect(parseHold('{"version":1', VM)).toBeUndefined();
    expect(parseHold(JSON.stringify({ ...made, until: 'soon' }), VM)).toBeUndefined();
    expect(parseHold(JSON.stringify({ ...made, by: 7 }), VM)).toBeUndefined();
    expect(parseHold(JSON.stringify({ ...made, version: 2 }), VM)).toBeUndefined();
  });

  it('is on until its end, not at it', () => {
    const h = hold(VM, 1);
    expect(heldUntil(h, T0)).toBe(T0 + HOUR);
    expect(heldUntil(h, T0 + HOUR)).toBeUndefined();
    expect(heldUntil(undefined, T0)).toBeUndefined();
  });

  it('takes a length of at most 7 days, a day by default, and names the option in its error', () => {
    expect(parseHoldDuration(undefined)).toBe(24 * HOUR);
    expect(parseHoldDuration('7d')).toBe(MAX_HOLD_MS);
    expect(() => parseHoldDuration('8d')).toThrow('--for "8d" is not a duration of at most 7 days');
    expect(() => parseHoldDuration('soon', '--hold')).toThrow('--hold "soon"');
  });

  it('takes a VM uuid in either case and gives it as XO names the folder', () => {
    expect(parseVm(VM.toUpperCase())).toBe(VM);
    expect(() => parseVm('../etc')).toThrow('is not a VM uuid');
  });

  it('finds the VM of a path in the VM tree only', () => {
    expect(vmOfPath('/r', `/r/xo-vm-backups/${VM}/vdis/j/d/x.vhd`)).toBe(VM);
    expect(vmOfPath('/r', `/r/xo-config-backups/${VM}/x.json`)).toBeUndefined();
    expect(vmOfPath('/r', '/r/xo-vm-backups/not-a-uuid/x.json')).toBeUndefined();
  });

  it('acknowledges new and rewritten holds, expires those past their end, and notices those ended early', () => {
    const fresh = hold(VM, 2, 'new');
    const seenBefore = hold(OTHER, 2, 'seen');
    const expired = hold('11111111-2222-3333-4444-555555555555', 1);
    const endedEarly = hold('aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee', 2);
    const seen = new Map([
      [VM, 'an older hold on the same VM'],
      [OTHER, 'seen'],
    ]);
    const known = new Map([
      [OTHER, seenBefore],
      [endedEarly.vm, endedEarly],
      [expired.vm, expired],
    ]);
    const review = reviewHolds([fresh, seenBefore, expired], (vm) => seen.get(vm), known, T0 + 1.5 * HOUR);
    expect([...review.active.keys()].sort()).toEqual([VM, OTHER].sort());
    expect(review.acknowledge).toEqual([fresh]);
    expect(review.expired).toEqual([expired]);
    // Removed from file before its end; the expired one, gone from the known list too, is not ended early twice.
    expect(review.endedEarly).toEqual([endedEarly]);
  });
});
