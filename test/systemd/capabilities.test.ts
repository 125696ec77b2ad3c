import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { boundingSetOf, judgeBoundingSet } from '../../src/systemd/capabilities.js';
import { parseUnit } from '../../src/systemd/unit-file.js';

const PACKAGED = readFileSync('systemd/xo-immutable-backups.service', 'utf8');

function setOf(...dropIns: string[]): Set<string> | undefined {
  return boundingSetOf(
    parseUnit([
      { path: 'xo-immutable-backups.service', text: PACKAGED },
      ...dropIns.map((text, i) => ({ path: `${i}.conf`, text: `[Service]\n${text}\n` })),
    ]),
  );
}

describe("the unit's capability bounding set, as systemd builds it", () => {
  it('the packaged unit keeps the four the daemon uses', () => {
    expect([...setOf()!].sort()).toEqual(['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_LINUX_IMMUTABLE']);
    expect(judgeBoundingSet(setOf())).toMatch(/^keeps /);
  });

  it('a drop-in adds, takes away with ~, or empties the set', () => {
    expect(setOf('CapabilityBoundingSet=cap_sys_admin')?.has('CAP_SYS_ADMIN')).toBe(true);
    expect(setOf('CapabilityBoundingSet=~CAP_CHOWN')?.has('CAP_CHOWN')).toBe(false);
    expect(setOf('CapabilityBoundingSet=')?.size).toBe(0);
    expect(boundingSetOf(parseUnit([{ path: 'u', text: '[Service]\nExecStart=/bin/true\n' }]))).toBeUndefined();
  });

  it('without CAP_CHOWN: a warning naming the fix; without a capability the daemon needs: a failure', () => {
    expect(judgeBoundingSet(setOf('CapabilityBoundingSet=~CAP_CHOWN'))).toMatch(/^WARNING: .*CAP_CHOWN.*install-unit/);
    expect(() => judgeBoundingSet(setOf('CapabilityBoundingSet='))).toThrow(
      /leaves out CAP_LINUX_IMMUTABLE, CAP_FOWNER, CAP_DAC_OVERRIDE/,
    );
    expect(judgeBoundingSet(undefined)).toMatch(/not set/);
  });
});
