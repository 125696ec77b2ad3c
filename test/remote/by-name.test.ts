import { describe, expect, it } from 'vitest';
import {
  chainClaimsByName,
  dataDirectoryClaims,
  looksOrphaned,
  vhdDirectoryNames,
  type DataDirectory,
} from '../../src/remote/by-name.js';
import type { ListedEntry, VdiFolder } from '../../src/remote/model.js';

const file = (name: string): ListedEntry => ({ name, isFile: true, isDirectory: false });
const dir = (name: string): ListedEntry => ({ name, isFile: false, isDirectory: true });
const backup = (datetime: string) => ({
  datetime,
  instant: Date.parse(datetime.replace(/(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z/, '$1-$2-$3T$4:$5:$6Z')),
});
const VDI = 'vdis/job/vdi';
const data = (name: string, finished = true): DataDirectory => ({ path: `${VDI}/data/${name}`, name, finished });
const vdi = (...names: string[]): VdiFolder => ({ path: VDI, entries: [...names.map(file), dir('data')] });
const owners = (claims: ReturnType<typeof dataDirectoryClaims>) =>
  Object.fromEntries(claims.map((c) => [c.unit.path.slice(`${VDI}/data/`.length), c.backup.datetime]));

describe('dataDirectoryClaims (encrypted remotes: by name only)', () => {
  const b1 = backup('20261201T010000Z');
  const b2 = backup('20261201T020000Z');
  const b3 = backup('20261201T030000Z');

  it('pairs each alias with the data directory of its own name, recursively', () => {
    const claims = dataDirectoryClaims(
      vdi('20261201T010000Z.alias.vhd', '20261201T020000Z.alias.vhd'),
      [data('20261201T010000Z.vhd'), data('20261201T020000Z.vhd')],
      [b1, b2],
    );
    expect(owners(claims)).toEqual({ '20261201T010000Z.vhd': b1.datetime, '20261201T020000Z.vhd': b2.datetime });
    expect(claims.every((c) => c.unit.recursive)).toBe(true);
  });

  it('gives a merged base (no alias of its name) to the backup whose alias points at it, never leaves it out', () => {
    // XO merged b1 into its base: 01's directory is gone and 01.alias.vhd points at 00.vhd, which keeps its name.
    const claims = dataDirectoryClaims(
      vdi('20261201T010000Z.alias.vhd', '20261201T020000Z.alias.vhd', '20261201T030000Z.alias.vhd'),
      [data('20261201T000000Z.vhd'), data('20261201T020000Z.vhd'), data('20261201T030000Z.vhd')],
      [b1, b2, b3],
    );
    expect(owners(claims)).toEqual({
      '20261201T000000Z.vhd': b1.datetime,
      '20261201T020000Z.vhd': b2.datetime,
      '20261201T030000Z.vhd': b3.datetime,
    });
  });

  it('leaves an orphan (no alias of its name, no alias at or after it without a directory) to XO, unless locked', () => {
    const folder = vdi('20261201T010000Z.alias.vhd', '20261201T030000Z.alias.vhd');
    const orphan = data('20261201T020000Z.vhd');
    const directories = [data('20261201T010000Z.vhd'), orphan, data('20261201T030000Z.vhd')];
    expect(looksOrphaned(folder, directories)).toEqual([orphan]);
    for (const locked of [undefined, true, false]) {
      const claims = dataDirectoryClaims(
        folder,
        [...directories.filter((d) => d !== orphan), { ...orphan, locked }],
        [b1, b3],
      );
      // Its flag is read where it decides: off, the orphan is left; on (locked already) or not read, it stays claimed.
      expect(owners(claims)['20261201T020000Z.vhd'], `locked: ${locked}`).toBe(
        locked === false ? undefined : b3.datetime,
      );
    }
  });

  it('does not count an alias older than a directory as its merge target', () => {
    // 01.alias.vhd has no directory of its name (merged into 00), but 02 is newer: an orphan all the same.
    const folder = vdi('20261201T010000Z.alias.vhd', '20261201T030000Z.alias.vhd');
    const directories = [data('20261201T000000Z.vhd'), data('20261201T020000Z.vhd'), data('20261201T030000Z.vhd')];
    expect(looksOrphaned(folder, directories).map((d) => d.name)).toEqual(['20261201T020000Z.vhd']);
  });

  it("gives a merged base the backup whose alias XO pointed at it (no directory of its own), for that backup's window", () => {
    // XO merged b2 into the base 20261201T000000Z.vhd: b2's directory is gone, its alias points at the base.
    const folder = vdi('20261201T020000Z.alias.vhd', '20261201T030000Z.alias.vhd');
    const directories = [data('20261201T000000Z.vhd'), data('20261201T030000Z.vhd')];
    expect(owners(dataDirectoryClaims(folder, directories, [b2, b3]))).toEqual({
      '20261201T000000Z.vhd': b2.datetime,
      '20261201T030000Z.vhd': b3.datetime,
    });
    // b2 past its window (or deleted by XO's retention): the base is freed, so XO's next merge into it goes through.
    expect(owners(dataDirectoryClaims(folder, directories, [b3]))).toEqual({ '20261201T030000Z.vhd': b3.datetime });
  });

  it('ignores an alias planted between a merged base and the alias that points at it: it can only lengthen the window', () => {
    // b2's alias points at the base; 01.alias.vhd was planted with no backup, an old backup's name, or b1 long gone.
    const folder = vdi('20261201T010000Z.alias.vhd', '20261201T020000Z.alias.vhd', '20261201T030000Z.alias.vhd');
    const directories = [data('20261201T000000Z.vhd'), data('20261201T030000Z.vhd')];
    expect(owners(dataDirectoryClaims(folder, directories, [b2, b3]))['20261201T000000Z.vhd']).toBe(b2.datetime);
    expect(owners(dataDirectoryClaims(folder, directories, [b1, b2, b3]))['20261201T000000Z.vhd']).toBe(b2.datetime);
  });

  it('gives a legacy uuid-named directory to the newest backup of its VDI folder', () => {
    const claims = dataDirectoryClaims(
      vdi('20261201T010000Z.alias.vhd', '20261201T020000Z.alias.vhd'),
      [data('0b6c1e4e-8d0f-4d59-9d9c-3f8b0c1d2e3f.vhd')],
      [b1, b2],
    );
    expect(owners(claims)).toEqual({ '0b6c1e4e-8d0f-4d59-9d9c-3f8b0c1d2e3f.vhd': b2.datetime });
  });

  it('locks nothing of a backup not complete yet, nor a directory XO is still writing', () => {
    const claims = dataDirectoryClaims(
      vdi('20261201T010000Z.alias.vhd', '20261201T020000Z.alias.vhd'),
      // b2's json is not complete (not in `backups`); b3 has no alias yet and its directory is being written.
      [data('20261201T020000Z.vhd'), data('20261201T030000Z.vhd', false)],
      [b1],
    );
    expect(owners(claims)).toEqual({});
  });

  it('ignores backups whose alias is in another VDI folder', () => {
    const claims = dataDirectoryClaims(vdi('20261201T010000Z.alias.vhd'), [data('20261201T000000Z.vhd')], [b1, b3]);
    expect(owners(claims)).toEqual({ '20261201T000000Z.vhd': b1.datetime });
  });
});

describe('chainClaimsByName (encrypted remotes, chains protected: the safe side)', () => {
  it('gives every alias and directory of the folder, its expired base included, to the newest backup at or after it', () => {
    const b2 = backup('20261201T020000Z');
    const b3 = backup('20261201T030000Z');
    // 01 is outside the window (not among the complete backups), but 02 and 03 may be built on it.
    const claims = chainClaimsByName(
      vdi('20261201T010000Z.alias.vhd', '20261201T020000Z.alias.vhd', '20261201T030000Z.alias.vhd'),
      [data('20261201T010000Z.vhd'), data('20261201T020000Z.vhd'), data('20261201T030000Z.vhd', false)],
      [b2, b3],
    );
    const owners = Object.fromEntries(claims.map((c) => [c.unit.path.slice(VDI.length + 1), c.backup.datetime]));
    expect(owners).toEqual({
      '20261201T010000Z.alias.vhd': b3.datetime,
      '20261201T020000Z.alias.vhd': b3.datetime,
      '20261201T030000Z.alias.vhd': b3.datetime,
      'data/20261201T010000Z.vhd': b3.datetime,
      'data/20261201T020000Z.vhd': b3.datetime,
    });
  });
});

describe('chainClaimsByName and orphans', () => {
  it('gives no backup an orphan directory whose flag is off, and keeps one locked already', () => {
    const b3 = backup('20261201T030000Z');
    const folder = vdi('20261201T010000Z.alias.vhd', '20261201T030000Z.alias.vhd');
    const kept = [data('20261201T010000Z.vhd'), data('20261201T030000Z.vhd')];
    const paths = (locked: boolean) =>
      chainClaimsByName(folder, [...kept, { ...data('20261201T020000Z.vhd'), locked }], [b3]).map((c) =>
        c.unit.path.slice(VDI.length + 1),
      );
    expect(paths(false)).not.toContain('data/20261201T020000Z.vhd');
    expect(paths(false)).toContain('data/20261201T010000Z.vhd');
    expect(paths(true)).toContain('data/20261201T020000Z.vhd');
  });
});

describe('vhdDirectoryNames', () => {
  it('keeps VHD directories, not dot names or files', () => {
    expect(
      vhdDirectoryNames([dir('20261201T010000Z.vhd'), dir('.20261201T020000Z.vhd'), file('x.vhd'), dir('other')]),
    ).toEqual(['20261201T010000Z.vhd']);
  });
});
