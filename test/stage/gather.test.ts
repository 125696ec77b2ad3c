import { describe, expect, it } from 'vitest';
import { gatherBackup } from '../../src/stage/gather.js';
import { chainSnapshot, DELTA, FULL, json, NEWEST, NOW, VDI } from '../support/snapshot.js';

// Which backup stage-restore copies and what with it, decided on a snapshot: pure.
describe('gatherBackup', () => {
  const options = { now: NOW, settleMs: 600_000 };

  it('takes the newest complete backup with its whole chain, named from the root', () => {
    const gathered = gatherBackup(chainSnapshot(), options);
    expect(gathered.backup.datetime).toBe(NEWEST);
    expect(gathered.units.sort()).toEqual(
      [`${NEWEST}.json`, ...[FULL, DELTA, NEWEST].flatMap((dt) => [`${VDI}/${dt}.alias.vhd`, `${VDI}/data/${dt}.vhd`])]
        .map((p) => `xo-vm-backups/vm/${p}`)
        .sort(),
    );
    expect(gathered).toMatchObject({ notes: [], problems: [] });
    expect(gatherBackup(chainSnapshot(), { ...options, backup: FULL }).units).toHaveLength(3);
  });

  it('refuses a json path XO would miss and an alias leaving its folder; notes a chain it cannot read', () => {
    const snapshot = chainSnapshot();
    const jsons = new Map(snapshot.jsons);
    jsons.set(`${NEWEST}.json`, json({ xva: `${NEWEST}.xva`, vhds: { x: `${VDI}/${NEWEST}.alias.vhd` } }));
    const links = new Map(snapshot.links);
    links.set(`${VDI}/${NEWEST}.alias.vhd`, { kind: 'unknown', why: 'no VHD header' });
    const aliases = new Map(snapshot.aliases);
    aliases.set(`${VDI}/${DELTA}.alias.vhd`, { outside: '"../x/data/y.vhd"' });
    const gathered = gatherBackup({ ...snapshot, jsons, links, aliases }, options);
    // The older alias is part of the chain (every older VHD, as the newest's link cannot be read).
    expect(gathered.problems.map((p) => p.path)).toEqual([
      `xo-vm-backups/vm/${VDI}/${DELTA}.alias.vhd`,
      `xo-vm-backups/vm/${NEWEST}.xva`,
    ]);
    expect(gathered.notes).toEqual([expect.stringContaining(`the parent chain of xo-vm-backups/vm/${VDI}/${NEWEST}`)]);
  });

  it('refuses a VM folder behind a link, and says which VM folder or backup is not there', () => {
    const linked = {
      ...chainSnapshot(),
      found: false,
      problems: [{ path: 'xo-vm-backups/vm', reason: 'a symbolic link' }],
    };
    expect(() => gatherBackup(linked, options)).toThrow(expect.objectContaining({ code: 'STAGE_SOURCE_REFUSED' }));
    expect(() => gatherBackup({ ...chainSnapshot(), found: false }, options)).toThrow(
      expect.objectContaining({ code: 'STAGE_NOT_FOUND' }),
    );
    expect(() => gatherBackup(chainSnapshot(), { ...options, backup: '20200101T000000Z' })).toThrow(
      expect.objectContaining({ code: 'STAGE_NOT_FOUND' }),
    );
  });
});
