import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/validate.js';
import { editDistance, nearestKey } from '../../src/config/suggest.js';

function problems(raw: unknown): { key: string; message: string; hint: string }[] {
  const result = validateConfig(raw);
  if (result.ok) throw new Error('expected problems');
  return result.problems;
}

const remote = { root: '/srv/b', immutabilityDuration: '7d' };

describe('config mistakes an admin makes', () => {
  it('suggests the nearest known key for a misspelt one, at its level', () => {
    const found = problems({
      liftEvry: '1h',
      remotes: {
        main: {
          root: '/srv/b',
          immutabilityDurration: '7d',
          RebuildIndexOnStart: true,
          protectChain: false,
          encryptionKey: 'k',
        },
      },
    });
    const hint = (key: string): string => found.find((p) => p.key === key)?.hint ?? '';
    expect(hint('liftEvry')).toContain('did you mean `liftEvery`');
    expect(hint('remotes.main.immutabilityDurration')).toContain('did you mean `immutabilityDuration`');
    expect(hint('remotes.main.RebuildIndexOnStart')).toContain('did you mean `rebuildIndexOnStart`');
    expect(hint('remotes.main.protectChain')).toContain('did you mean `protectChains`');
    expect(hint('remotes.main.encryptionKey')).toContain('did you mean `encryptionKeyFile`');
  });

  it('names the level a key belongs to when it is written at the other one', () => {
    const found = problems({ immutableDuration: '7d', remotes: { main: { ...remote, liftEvery: '1h' } } });
    const hint = (key: string): string => found.find((p) => p.key === key)?.hint ?? '';
    expect(hint('immutableDuration')).toContain('did you mean `immutabilityDuration`');
    expect(hint('immutableDuration')).toContain('remotes.<id>');
    expect(hint('remotes.main.liftEvery')).toContain('top-level setting');
  });

  it('suggests nothing for a key unlike any known one', () => {
    const [problem] = problems({ colour: 'blue', remotes: { main: remote } });
    expect(problem?.hint).not.toContain('did you mean');
    expect(nearestKey('colour', ['indexPath', 'liftEvery', 'remotes'])).toBeUndefined();
  });

  it('suggests "7d" for a number where a duration goes', () => {
    const found = problems({ rescanEvery: 900, remotes: { main: { root: '/srv/b', immutabilityDuration: 7 } } });
    for (const key of ['rescanEvery', 'remotes.main.immutabilityDuration']) {
      const problem = found.find((p) => p.key === key);
      expect(problem?.message, key).toBe('is a number, not a duration');
      expect(problem?.hint, key).toContain('"7d"');
    }
  });

  it('counts a swap of two letters as one edit', () => {
    expect(editDistance('lfitEvery', 'liftEvery')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
  });
});
