import { describe, expect, it } from 'vitest';
import {
  indexListing,
  findVmBackups,
  governingClaims,
  isInWindow,
  MAX_REFERENCES_PER_JSON,
  readReferences,
  resolveAliasTarget,
  vmBackupParts,
  type ListedEntry,
} from '../../src/remote/model.js';

const file = (name: string): ListedEntry => ({ name, isFile: true, isDirectory: false });
const dir = (name: string): ListedEntry => ({ name, isFile: false, isDirectory: true });
const DAY = 86_400_000;

describe('findVmBackups', () => {
  it('finds one backup per run json and nothing else, oldest first', () => {
    const backups = findVmBackups([
      'cache.json.gz',
      '20261122T061500Z.json',
      '20261121T061500Z.json',
      '.20261123T000000Z.json',
      '20261122T061500Z.xva',
      'vdis',
      '20261399T000000Z.json',
    ]);
    expect(backups.map((b) => b.metadata)).toEqual(['20261121T061500Z.json', '20261122T061500Z.json']);
  });
});

describe('vmBackupParts', () => {
  const backup = findVmBackups(['20261122T061500Z.json'])[0]!;
  it('collects the json, xva, checksum, flat VHDs, VHD directories and aliases of one run only', () => {
    const folder = [
      file('20261122T061500Z.json'),
      file('20261122T061500Z.xva'),
      file('20261122T061500Z.xva.checksum'),
      file('20261121T061500Z.xva'),
      file('cache.json.gz'),
    ];
    const vdis = [
      {
        path: 'vdis/job/a',
        entries: [file('20261122T061500Z.vhd'), file('20261121T061500Z.vhd'), file('.parent.merge.json')],
      },
      { path: 'vdis/job/b', entries: [file('20261122T061500Z.alias.vhd'), dir('data')] },
      { path: 'vdis/job/c', entries: [dir('20261122T061500Z.vhd')] },
    ];
    const { units, aliases } = vmBackupParts(backup, indexListing(folder, vdis));
    expect(units).toEqual([
      { path: '20261122T061500Z.json', recursive: false },
      { path: '20261122T061500Z.xva', recursive: false },
      { path: '20261122T061500Z.xva.checksum', recursive: false },
      { path: 'vdis/job/a/20261122T061500Z.vhd', recursive: false },
      { path: 'vdis/job/b/20261122T061500Z.alias.vhd', recursive: false },
      { path: 'vdis/job/c/20261122T061500Z.vhd', recursive: true },
    ]);
    expect(aliases).toEqual(['vdis/job/b/20261122T061500Z.alias.vhd']);
  });
});

describe('resolveAliasTarget', () => {
  it('resolves a relative alias inside its VDI folder', () => {
    expect(resolveAliasTarget('vdis/j/v/20261122T061500Z.alias.vhd', 'data/20261122T061500Z.vhd\n')).toBe(
      'vdis/j/v/data/20261122T061500Z.vhd',
    );
    expect(resolveAliasTarget('vdis/j/v/x.alias.vhd', './data/uuid.vhd')).toBe('vdis/j/v/data/uuid.vhd');
  });

  it('refuses aliases that leave the VDI folder', () => {
    for (const content of ['../../../etc', '/etc/passwd', '', 'data/../../w/data/x.vhd', '..']) {
      expect(resolveAliasTarget('vdis/j/v/x.alias.vhd', content), content).toBeUndefined();
    }
  });
});

describe('readReferences', () => {
  it('takes the xva and VHD paths of a readable json and drops anything leaving the VM folder', () => {
    expect(readReferences({ xva: './20261122T061500Z.xva' }).references).toEqual(['20261122T061500Z.xva']);
    expect(
      readReferences({ vhds: { a: 'vdis/j/a/x.alias.vhd', b: '../../../etc/shadow', c: '/etc/passwd', d: 42 } })
        .references,
    ).toEqual(['vdis/j/a/x.alias.vhd']);
    expect(readReferences('ciphertext').references).toEqual([]);
  });

  it('takes the first paths up to the cap, each once, and counts what the json names', () => {
    const vhds = Object.fromEntries(Array.from({ length: 300_000 }, (_, i) => [`r${i}`, `vdis/j/v/${i % 5000}.vhd`]));
    const { references, named } = readReferences({ xva: 'a.xva', vhds });
    expect(named).toBe(300_001);
    expect(references).toHaveLength(MAX_REFERENCES_PER_JSON);
    expect(references[0]).toBe('a.xva');
    expect(references.at(-1)).toBe(`vdis/j/v/${MAX_REFERENCES_PER_JSON - 2}.vhd`);
  });
});

describe('governingClaims', () => {
  it('lets the newest backup that references a unit govern it (a merged VHD directory keeps an older name)', () => {
    const older = { instant: 1 };
    const newer = { instant: 2 };
    const claims = governingClaims([
      { unit: { path: 'vdis/j/v/data/old.vhd', recursive: true }, backup: older },
      { unit: { path: 'vdis/j/v/data/old.vhd', recursive: true }, backup: newer },
      { unit: { path: 'a.json', recursive: false }, backup: older },
    ]);
    expect(claims).toEqual([
      { unit: { path: 'vdis/j/v/data/old.vhd', recursive: true }, backup: newer },
      { unit: { path: 'a.json', recursive: false }, backup: older },
    ]);
  });
});

describe('isInWindow', () => {
  it('is false once the duration has fully elapsed since the backup datetime', () => {
    const now = Date.UTC(2026, 10, 22);
    expect(isInWindow(now - 7 * DAY + 1, now, 7 * DAY)).toBe(true);
    expect(isInWindow(now - 7 * DAY, now, 7 * DAY)).toBe(false);
    expect(isInWindow(now + DAY, now, 7 * DAY)).toBe(true);
  });
});
