import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { boundingSetOf, judgeBoundingSet, keeps, type BoundingSet } from '../../src/systemd/capabilities.js';
import { parseUnit } from '../../src/systemd/unit-file.js';

const PACKAGED = readFileSync('systemd/xo-immutable-backups.service', 'utf8');

function setOf(...dropIns: string[]): BoundingSet | undefined {
  return boundingSetOf(
    parseUnit([
      { path: 'xo-immutable-backups.service', text: PACKAGED },
      ...dropIns.map((text, i) => ({ path: `${i}.conf`, text: `[Service]\n${text}\n` })),
    ]),
  );
}

describe("the unit's capability bounding set, as systemd builds it", () => {
  it('the packaged unit keeps the four the daemon uses', () => {
    expect(setOf()).toEqual({
      only: new Set(['CAP_LINUX_IMMUTABLE', 'CAP_FOWNER', 'CAP_DAC_OVERRIDE', 'CAP_CHOWN']),
    });
    expect(judgeBoundingSet(setOf())).toMatch(/^keeps /);
  });

  it('a drop-in adds, takes away with ~, or empties the set', () => {
    expect(keeps(setOf('CapabilityBoundingSet=cap_sys_admin'), 'CAP_SYS_ADMIN')).toBe(true);
    expect(keeps(setOf('CapabilityBoundingSet=~CAP_CHOWN'), 'CAP_CHOWN')).toBe(false);
    expect(setOf('CapabilityBoundingSet=')).toEqual({ only: new Set() });
    expect(boundingSetOf(parseUnit([{ path: 'u', text: '[Service]\nExecStart=/bin/true\n' }]))).toBeUndefined();
  });

  // systemd's config_parse_capability_set (session 18's review): a line naming no capability, or the first one, replaces.
  it('"~" alone fills the set again; a list after it replaces it; numbers are capabilities', () => {
    expect(() => judgeBoundingSet(setOf('CapabilityBoundingSet=', 'CapabilityBoundingSet=~'))).not.toThrow();
    expect(() => judgeBoundingSet(setOf('CapabilityBoundingSet=~', 'CapabilityBoundingSet=CAP_SYS_ADMIN'))).toThrow(
      /leaves out/,
    );
    expect(judgeBoundingSet(setOf('CapabilityBoundingSet=', 'CapabilityBoundingSet=0 1 3 9'))).toMatch(/^keeps /);
  });

  it('without CAP_CHOWN: a warning naming the fix; without a capability the daemon needs: a failure', () => {
    expect(judgeBoundingSet(setOf('CapabilityBoundingSet=~CAP_CHOWN'))).toMatch(/^WARNING: .*CAP_CHOWN.*install-unit/);
    expect(() => judgeBoundingSet(setOf('CapabilityBoundingSet='))).toThrow(
      /leaves out CAP_LINUX_IMMUTABLE, CAP_FOWNER, CAP_DAC_OVERRIDE/,
    );
    expect(judgeBoundingSet(undefined)).toMatch(/not set/);
  });
});
