import { describe, expect, it } from 'vitest';
import type { VmSnapshot } from '../../src/backup/snapshot.js';
import { backupsOf, completionOf, restorePointOf, unitsOf } from '../../src/backup/vm.js';
import { chainSnapshot, DELTA, FULL, json, NEWEST, NOW, VDI } from '../support/snapshot.js';

// The backup model on plain values: a snapshot as backup/snapshot.ts reads it, written out by hand.
const paths = (units: readonly { path: string }[]): string[] => units.map((u) => u.path).sort();

describe('the backup model', () => {
  it('lists the backups whose json was read, oldest first, and judges their completion', () => {
    const snapshot = chainSnapshot();
    const jsons = new Map(snapshot.jsons);
    jsons.set(`${NEWEST}.json`, json('{"half', NOW - 60_000));
    jsons.delete(`${FULL}.json`);
    const half = { ...snapshot, jsons };
    expect(backupsOf(half).map((b) => b.datetime)).toEqual([DELTA, NEWEST]);
    expect(completionOf(half, backupsOf(half)[0]!, NOW, 600_000)).toMatchObject({ complete: true });
    expect(completionOf(half, backupsOf(half)[1]!, NOW, 600_000)).toEqual({
      complete: false,
      recheckAt: NOW + 540_000,
    });
  });

  it('gives a delta its own units and, as its chain, every alias and directory down to the full', () => {
    const snapshot = chainSnapshot();
    const newest = backupsOf(snapshot)[2]!;
    const units = unitsOf(snapshot, newest);
    expect(paths(units.units)).toEqual([`${NEWEST}.json`, `${VDI}/${NEWEST}.alias.vhd`, `${VDI}/data/${NEWEST}.vhd`]);
    expect(units.units.find((u) => u.path.endsWith('data/' + NEWEST + '.vhd'))?.recursive).toBe(true);
    expect(paths(units.chain)).toEqual(
      [FULL, DELTA].flatMap((dt) => [`${VDI}/${dt}.alias.vhd`, `${VDI}/data/${dt}.vhd`]).sort(),
    );
    expect(units).toMatchObject({ chainKnown: true, missing: [], problems: [] });
    expect(unitsOf(snapshot, backupsOf(snapshot)[0]!).chain).toEqual([]);
  });

  it('where a link cannot be read, takes every older VHD of the folder and says the chain is not known', () => {
    const links = new Map(chainSnapshot().links);
    links.set(`${VDI}/${NEWEST}.alias.vhd`, { kind: 'unknown', why: 'no VHD header' });
    const snapshot = chainSnapshot({ links });
    const units = unitsOf(snapshot, backupsOf(snapshot)[2]!);
    expect(units.chainKnown).toBe(false);
    expect(paths(units.chain)).toEqual(
      [FULL, DELTA].flatMap((dt) => [`${VDI}/${dt}.alias.vhd`, `${VDI}/data/${dt}.vhd`]).sort(),
    );
  });

  it('names a parent the header names but the folder lacks, and a json path that is not where XO writes', () => {
    const snapshot = chainSnapshot();
    const vdis = [{ path: VDI, entries: snapshot.vdis[0]!.entries.filter((e) => e.name !== `${DELTA}.alias.vhd`) }];
    const jsons = new Map(snapshot.jsons);
    jsons.set(`${NEWEST}.json`, json({ vhds: { x: `${VDI}/${NEWEST}.alias.vhd`, y: '../../etc/passwd.vhd' } }));
    const damaged = { ...snapshot, vdis, jsons };
    const units = unitsOf(damaged, backupsOf(damaged)[2]!);
    expect(units.disks[0]).toMatchObject({ unknown: true, missing: `${VDI}/${DELTA}.alias.vhd` });
    // A path leaving the VM folder is no reference at all (remote/model.ts: readReferences).
    expect(units.missing).toEqual([]);
    const point = restorePointOf(damaged, backupsOf(damaged)[2]!);
    expect(point.chain).toContain(`${VDI}/${DELTA}.alias.vhd`);
    expect(point.chainKnown).toBe(false);
  });

  it('counts what the json names but the folder lacks as a missing unit of the restore point', () => {
    const snapshot = chainSnapshot();
    const jsons = new Map(snapshot.jsons);
    jsons.set(`${NEWEST}.json`, json({ xva: `${NEWEST}.xva`, vhds: { x: `${VDI}/${NEWEST}.alias.vhd` } }));
    const withXva = { ...snapshot, jsons };
    const units = unitsOf(withXva, backupsOf(withXva)[2]!);
    expect(units.missing).toEqual([`${NEWEST}.xva`]);
    expect(units.named).toBe(2);
    expect(restorePointOf(withXva, backupsOf(withXva)[2]!).own).toContain(`${NEWEST}.xva`);
  });

  it('never follows an alias out of its VDI folder: a problem named from the root, no unit', () => {
    const aliases = new Map(chainSnapshot().aliases);
    aliases.set(`${VDI}/${NEWEST}.alias.vhd`, { outside: '"../../other/data/x.vhd"' });
    const snapshot = chainSnapshot({ aliases });
    const units = unitsOf(snapshot, backupsOf(snapshot)[2]!);
    expect(units.problems).toEqual([
      {
        path: `xo-vm-backups/vm/${VDI}/${NEWEST}.alias.vhd`,
        reason: 'the alias points outside its VDI folder ("../../other/data/x.vhd")',
      },
    ]);
    expect(paths(units.units)).toEqual([`${NEWEST}.json`, `${VDI}/${NEWEST}.alias.vhd`]);
  });

  it('encrypted: its own directory by name, its chain by name, and a restore point whose chain is not judged', () => {
    const plain = chainSnapshot();
    const snapshot: VmSnapshot = {
      ...plain,
      encrypted: true,
      aliases: new Map(),
      links: new Map(),
      jsons: new Map([...plain.jsons.keys()].map((name) => [name, json('ciphertext', NOW - 3 * 3600_000)])),
    };
    const newest = backupsOf(snapshot)[2]!;
    expect(completionOf(snapshot, newest, NOW, 600_000)).toMatchObject({ complete: true });
    const units = unitsOf(snapshot, newest);
    expect(paths(units.units)).toEqual([`${NEWEST}.json`, `${VDI}/${NEWEST}.alias.vhd`, `${VDI}/data/${NEWEST}.vhd`]);
    expect(paths(units.chain)).toEqual(
      [FULL, DELTA].flatMap((dt) => [`${VDI}/${dt}.alias.vhd`, `${VDI}/data/${dt}.vhd`]).sort(),
    );
    expect(units.chainKnown).toBe(false);
    expect(restorePointOf(snapshot, newest)).toMatchObject({ chain: [], chainKnown: false });
  });
});
