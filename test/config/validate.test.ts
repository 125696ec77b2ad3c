import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { validateConfig } from '../../src/config/validate.js';

const minimal = { remotes: { main: { root: '/srv/backups', immutabilityDuration: '7d' } } };

describe('validateConfig', () => {
  // The daemon and the commands compile the schema without checking it against the meta-schema (start-up time).
  it('has a config schema that is valid JSON Schema', () => {
    const ajv = new Ajv({ strict: true });
    expect(ajv.validateSchema(configSchema), ajv.errorsText(ajv.errors)).toBe(true);
  });

  it('accepts config.sample.json as shipped', () => {
    const result = validateConfig(JSON.parse(readFileSync('config.sample.json', 'utf8')));
    expect(result.ok).toBe(true);
  });

  it('applies the documented defaults and turns durations into milliseconds', () => {
    const result = validateConfig(minimal);
    expect(result).toEqual({
      ok: true,
      config: {
        indexPath: '/var/lib/xo-immutable-backups',
        liftEveryMs: 3_600_000,
        rescanEveryMs: 900_000,
        jsonSettleMs: 5_000,
        maxClockJumpMs: 86_400_000,
        metricsFile: undefined,
        logLevel: 'info',
        protectChains: true,
        remotes: [
          {
            id: 'main',
            root: '/srv/backups',
            immutabilityDurationMs: 7 * 86_400_000,
            windowStart: 'arrival',
            rebuildIndexOnStart: false,
            maxWatchedFolders: 100_000,
            maxIndexEntries: 1_000_000,
            protectChains: true,
          },
        ],
        warnings: [],
      },
    });
  });

  it("takes a remote's encryptionKeyFile as an absolute path outside every remote", () => {
    const withKey = (file: string) =>
      validateConfig({
        remotes: {
          main: { root: '/srv/backups', immutabilityDuration: '7d', encryptionKeyFile: file },
          other: { root: '/srv/other', immutabilityDuration: '7d' },
        },
      });
    const good = withKey('/etc/xo-immutable-backups/main.key');
    expect(good.ok && good.config.remotes[0]?.encryptionKeyFile).toBe('/etc/xo-immutable-backups/main.key');
    expect(good.ok && 'encryptionKeyFile' in (good.config.remotes[1] ?? {})).toBe(false);
    const relative = withKey('main.key');
    expect(relative.ok === false && relative.problems).toEqual([
      expect.objectContaining({
        key: 'remotes.main.encryptionKeyFile',
        value: 'main.key',
        message: 'is not an absolute path',
      }),
    ]);
    const inside = withKey('/srv/other/main.key');
    expect(inside.ok === false && inside.problems).toEqual([
      expect.objectContaining({
        key: 'remotes.main.encryptionKeyFile',
        message: 'lies inside remote "other" (/srv/other)',
      }),
    ]);
  });

  it('accepts a config migrated from the prior art, naming each of its keys that is ignored here', () => {
    const result = validateConfig({
      liftEvery: '1h',
      remotes: { remote1: { root: '/mnt/ssd/vhdblock', immutabilityDuration: '7d', delayBetweenSizeCheck: '100ms' } },
    });
    expect(result.ok).toBe(true);
    expect(result.ok && result.config.warnings).toEqual([
      expect.stringMatching(/^remotes\.remote1\.delayBetweenSizeCheck is ignored .*remove the key$/),
    ]);
  });

  it('reports every problem at once, shape and value together, each with its key, value and a hint', () => {
    const result = validateConfig({
      liftEvery: 'soon',
      remotes: {
        a: { root: 'relative/path', immutabilityDuration: '12h' },
        b: { root: '/srv/b', immutabilityDuration: '7d', immutabilityDurations: '8d' },
      },
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems.map((p) => [p.key, p.value])).toEqual([
      ['remotes.b.immutabilityDurations', undefined],
      ['liftEvery', 'soon'],
      ['remotes.a.root', 'relative/path'],
      ['remotes.a.immutabilityDuration', '12h'],
    ]);
    for (const problem of result.problems) expect(problem.hint.length).toBeGreaterThan(10);
  });

  it('lists every shape problem with its path', () => {
    const result = validateConfig({ logLevel: 'loud', remotes: { a: { immutabilityDuration: 7 } } });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems.map((p) => `${p.key} ${p.message}`).sort()).toEqual([
      'logLevel is not one of the allowed values',
      'remotes.a.immutabilityDuration is a number, not a duration',
      'remotes.a.root is missing',
    ]);
  });

  it('takes caps on watched folders and index entries per remote, refusing any but a whole number of at least 1', () => {
    const capped = validateConfig({
      remotes: { a: { root: '/srv/a', immutabilityDuration: '7d', maxWatchedFolders: 5, maxIndexEntries: 20 } },
    });
    expect(capped.ok && capped.config.remotes[0]).toMatchObject({ maxWatchedFolders: 5, maxIndexEntries: 20 });
    const result = validateConfig({
      remotes: {
        a: { root: '/srv/a', immutabilityDuration: '7d', maxWatchedFolders: 0, maxIndexEntries: 2.5 },
        b: { root: '/srv/b', immutabilityDuration: '7d', maxWatchedFolders: -3, maxIndexEntries: '1000' },
      },
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems.map((p) => [p.key, p.value, p.message]).sort()).toEqual([
      ['remotes.a.maxIndexEntries', 2.5, 'is not a whole number of at least 1'],
      ['remotes.a.maxWatchedFolders', 0, 'is not a whole number of at least 1'],
      ['remotes.b.maxIndexEntries', '1000', 'should be number'],
      ['remotes.b.maxWatchedFolders', -3, 'is not a whole number of at least 1'],
    ]);
    expect(result.problems.find((p) => p.key === 'remotes.a.maxWatchedFolders')?.hint).toMatch(/such as 100000/);
  });

  it('takes windowStart at the top as every remote default, per remote over it, and refuses any other value', () => {
    const byName = validateConfig({
      windowStart: 'name',
      remotes: {
        a: { root: '/srv/a', immutabilityDuration: '7d' },
        b: { root: '/srv/b', immutabilityDuration: '7d', windowStart: 'arrival' },
      },
    });
    expect(byName.ok && byName.config.remotes.map((r) => r.windowStart)).toEqual(['name', 'arrival']);
    const result = validateConfig({
      windowStart: 'snapshot',
      remotes: { a: { root: '/srv/a', immutabilityDuration: '7d', windowStart: 'Arrival', windowStrat: 'name' } },
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems.map((p) => [p.key, p.value, p.message, p.hint])).toEqual([
      ['windowStart', 'snapshot', 'is not one of the allowed values', 'use one of ["arrival","name"]'],
      [
        'remotes.a.windowStrat',
        undefined,
        'is not a known setting',
        expect.stringContaining('did you mean `windowStart`?'),
      ],
      ['remotes.a.windowStart', 'Arrival', 'is not one of the allowed values', 'use one of ["arrival","name"]'],
    ]);
  });

  it('refuses an empty or missing remotes section', () => {
    for (const raw of [{}, { remotes: {} }]) {
      const result = validateConfig(raw);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.problems[0]?.key).toBe('remotes');
    }
  });

  it('refuses an immutability duration under one day and durations without a unit', () => {
    for (const immutabilityDuration of ['23h', '1000', '-1d', '0d']) {
      const result = validateConfig({ remotes: { a: { root: '/srv/a', immutabilityDuration } } });
      expect(result.ok, immutabilityDuration).toBe(false);
    }
    expect(validateConfig({ remotes: { a: { root: '/srv/a', immutabilityDuration: '1d' } } }).ok).toBe(true);
  });

  it('refuses an index inside a remote, a remote inside another, and ids that cannot name a folder', () => {
    const result = validateConfig({
      indexPath: '/srv/a/index',
      remotes: {
        a: { root: '/srv/a', immutabilityDuration: '7d' },
        b: { root: '/srv/a/b', immutabilityDuration: '7d' },
        '../x': { root: '/srv/x', immutabilityDuration: '7d' },
      },
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems.map((p) => p.key)).toEqual(['remotes.../x', 'indexPath', 'remotes.b.root']);
    expect(result.problems[1]?.message).toContain('overlaps remote "a"');
  });

  it('gives each remote the top-level protectChains unless it sets its own, and refuses a non-boolean', () => {
    const result = validateConfig({
      protectChains: true,
      remotes: {
        plain: { root: '/srv/plain', immutabilityDuration: '7d' },
        vault: { root: '/srv/vault', immutabilityDuration: '7d', protectChains: false },
      },
    });
    expect(result.ok && result.config.remotes.map((r) => [r.id, r.protectChains])).toEqual([
      ['plain', true],
      ['vault', false],
    ]);
    const off = validateConfig({
      protectChains: false,
      remotes: { a: { root: '/srv/a', immutabilityDuration: '7d' } },
    });
    expect(off.ok && off.config.remotes[0]?.protectChains).toBe(false);
    const wrong = validateConfig({
      remotes: { a: { root: '/srv/a', immutabilityDuration: '7d', protectChains: 'no' } },
    });
    expect(wrong.ok ? [] : wrong.problems.map((p) => `${p.key} ${p.message}`)).toEqual([
      'remotes.a.protectChains should be boolean',
    ]);
  });
});
