import { describe, expect, it } from 'vitest';
import { formatBytes } from '../../src/bytes.js';
import { chainCostOf, leftoverBackups, renderChainCost, unfreedVdis } from '../../src/status/chain-cost.js';
import { chainSnapshot, FULL, NEWEST, NOW, VDI } from '../support/snapshot.js';

const DAY = 86_400_000;
// The full (Dec 1) is past a 2-day window at NOW (Dec 6, noon); the delta (Dec 5) and the newest are inside.
const WINDOW = 2 * DAY;

// XO's retention removed the full: its json is gone, its alias and VHD directory stay (EPERM at cleanVm).
function retentionRemovedFull(encrypted: boolean): ReturnType<typeof chainSnapshot> {
  const snapshot = chainSnapshot({ encrypted });
  const jsons = new Map(snapshot.jsons);
  jsons.delete(`${FULL}.json`);
  return {
    ...snapshot,
    entries: snapshot.entries.filter((e) => e.name !== `${FULL}.json`),
    jsons,
    ...(encrypted ? { aliases: new Map(), links: new Map() } : {}),
  };
}

describe('what the remote holds beyond XO retention', () => {
  it.each([false, true])(
    'a disk whose json XO deleted is left over (encrypted %s), its VHD directory with it',
    (encrypted) => {
      expect(leftoverBackups(retentionRemovedFull(encrypted))).toEqual([
        { backup: FULL, vdi: VDI, units: [`${VDI}/${FULL}.alias.vhd`, `${VDI}/data/${FULL}.vhd`] },
      ]);
    },
  );

  it('a disk newer than every json is a run still writing, not a leftover; nothing is left when every json is there', () => {
    const snapshot = chainSnapshot({ encrypted: true });
    expect(leftoverBackups(snapshot)).toEqual([]);
    const jsons = new Map(snapshot.jsons);
    jsons.delete(`${NEWEST}.json`);
    const writing = { ...snapshot, jsons, entries: snapshot.entries.filter((e) => e.name !== `${NEWEST}.json`) };
    expect(leftoverBackups(writing)).toEqual([]);
  });

  it('names a VDI folder of an encrypted remote once a VHD is kept past its own window, counting those', () => {
    const snapshot = retentionRemovedFull(true);
    // The full's alias and directory: past their window, locked for NEWEST.
    expect(unfreedVdis(snapshot, NOW, WINDOW)).toEqual([{ vdi: VDI, pastOwnWindow: 2 }]);
    // A window long enough for every VHD: nothing kept past its own window yet.
    expect(unfreedVdis(snapshot, NOW, 30 * DAY)).toEqual([]);
    // No backup inside its window any more: the chain is freed once the newest leaves it.
    expect(unfreedVdis(snapshot, NOW + 10 * DAY, WINDOW)).toEqual([]);
  });

  it('counts only locked leftovers, a backup once, and names folders only when chains are claimed by name', () => {
    const snapshot = retentionRemovedFull(true);
    const vm = { vm: 'vm', leftovers: leftoverBackups(snapshot), unfreed: unfreedVdis(snapshot, NOW, WINDOW) };
    const key = (v: string, unit: string): string => `${v}/${unit}`;
    const alias = `vm/${VDI}/${FULL}.alias.vhd`;
    const directory = `vm/${VDI}/data/${FULL}.vhd`;
    const bytes = new Map([
      [alias, 100],
      [directory, 5_000_000],
    ]);
    const locked = new Map([
      [alias, true],
      [directory, true],
    ]);
    expect(chainCostOf([vm], true, locked, bytes, key)).toEqual({
      chainsByName: true,
      beyondRetention: { backups: 1, units: 2, bytes: 5_000_100 },
      unfreedVdis: [{ vm: 'vm', vdi: VDI, pastOwnWindow: 2, leftoverBackups: 1, leftoverBytes: 5_000_100 }],
    });
    // Unlocked (protectChains false, its window over): XO's next cleanVm removes it, so it is not counted.
    expect(chainCostOf([vm], false, new Map(), bytes, key)).toEqual({
      chainsByName: false,
      beyondRetention: { backups: 0, units: 0, bytes: 0 },
      unfreedVdis: [],
    });
  });

  it('says the cost and the three choices in status text', () => {
    const lines = renderChainCost({
      chainsByName: true,
      beyondRetention: { backups: 3, units: 6, bytes: 3 * 1024 * 1024 },
      unfreedVdis: [{ vm: 'abcdef0123', vdi: VDI, pastOwnWindow: 2, leftoverBackups: 3, leftoverBytes: 3 << 20 }],
    }).join('\n');
    expect(lines).toContain('CHAINS NEVER FREED: 1 VDI folder(s)');
    expect(lines).toContain("beyond XO's retention: 3 backup(s) its merges could not remove, 3.0 MiB locked");
    expect(lines).toContain(`abcdef01 ${VDI}: 2 VHD(s) past their own window, 3 removed backup(s), 3.0 MiB`);
    expect(lines).toContain('protectChains false for this remote');
    expect(
      renderChainCost({ chainsByName: false, beyondRetention: { backups: 0, units: 0, bytes: 0 }, unfreedVdis: [] }),
    ).toEqual([]);
    expect([formatBytes(512), formatBytes(1536), formatBytes(5 * 1024 ** 3)]).toEqual(['512 B', '1.5 KiB', '5.0 GiB']);
  });
});
