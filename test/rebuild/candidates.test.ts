import { describe, expect, it } from 'vitest';
import { vmRebuildCandidates } from '../../src/rebuild/candidates.js';
import type { ListedEntry } from '../../src/remote/model.js';

const file = (name: string): ListedEntry => ({ name, isFile: true, isDirectory: false });
const dir = (name: string): ListedEntry => ({ name, isFile: false, isDirectory: true });

describe('vmRebuildCandidates', () => {
  it('finds orphans and dates each unit from its name, or from the newest alias pointing to it, or not at all', () => {
    const folder = [file('20261101T000000Z.json'), file('cache.json.gz'), file('20261020T000000Z.xva')];
    const vdis = [
      {
        path: 'vdis/j/v',
        entries: [
          file('20261025T000000Z.vhd'),
          file('20261102T000000Z.alias.vhd'),
          file('20261101T000000Z.alias.vhd'),
          dir('data'),
          file('.x.merge.json'),
        ],
      },
    ];
    const data = new Map([
      ['vdis/j/v', [dir('20261001T000000Z.vhd'), dir('0b6c3a2e-uuid.vhd'), dir('1f00-unreferenced.vhd')]],
    ]);
    const aliases = new Map([
      ['vdis/j/v/20261101T000000Z.alias.vhd', 'data/20261001T000000Z.vhd'],
      ['vdis/j/v/20261102T000000Z.alias.vhd', 'data/0b6c3a2e-uuid.vhd'],
    ]);
    const byPath = Object.fromEntries(
      vmRebuildCandidates(folder, vdis, data, aliases).map((c) => [
        c.path,
        c.instant === undefined ? undefined : new Date(c.instant).toISOString().slice(0, 10),
      ]),
    );
    expect(byPath).toEqual({
      '20261101T000000Z.json': '2026-11-01',
      '20261020T000000Z.xva': '2026-10-20',
      'vdis/j/v/20261025T000000Z.vhd': '2026-10-25',
      'vdis/j/v/20261102T000000Z.alias.vhd': '2026-11-02',
      'vdis/j/v/20261101T000000Z.alias.vhd': '2026-11-01',
      // Merged into: the older name, governed by the newer run that points to it.
      'vdis/j/v/data/20261001T000000Z.vhd': '2026-11-01',
      'vdis/j/v/data/0b6c3a2e-uuid.vhd': '2026-11-02',
      'vdis/j/v/data/1f00-unreferenced.vhd': undefined,
    });
  });
});
