import type { AliasTarget, JsonFile, VmSnapshot } from '../../src/backup/snapshot.js';
import type { ListedEntry } from '../../src/remote/model.js';
import type { VhdLink } from '../../src/remote/vhd-header.js';

// A VM folder's snapshot (backup/snapshot.ts) written out by hand, for the pure parts of the model and its users.

export const file = (name: string): ListedEntry => ({ name, isFile: true, isDirectory: false });
export const folder = (name: string): ListedEntry => ({ name, isFile: false, isDirectory: true });
export const VDI = 'vdis/job/vdi';
export const [FULL, DELTA, NEWEST] = ['20261201T000000Z', '20261205T000000Z', '20261206T000000Z'];
export const NOW = Date.parse('2026-12-06T12:00:00Z');

export function json(content: object | string, mtimeMs = NOW - 3600_000): JsonFile {
  const text = typeof content === 'string' ? content : JSON.stringify(content);
  const parsed = typeof content === 'string' ? undefined : content;
  return {
    size: text.length,
    mtimeMs,
    identity: { dev: '1', ino: '2', size: String(text.length), mtimeNs: '0', ctimeNs: '0' },
    content: text,
    ...(parsed === undefined ? {} : { parsed }),
  };
}

// A full and two deltas in VHD directories, each delta's header naming the alias before it.
export function chainSnapshot(overrides: Partial<VmSnapshot> = {}): VmSnapshot {
  const names = [FULL, DELTA, NEWEST];
  const aliases = new Map<string, AliasTarget>(
    names.map((dt) => [`${VDI}/${dt}.alias.vhd`, { path: `${VDI}/data/${dt}.vhd`, type: 'directory' }]),
  );
  const links = new Map<string, VhdLink>([
    [`${VDI}/${FULL}.alias.vhd`, { kind: 'base' }],
    [`${VDI}/${DELTA}.alias.vhd`, { kind: 'delta', parent: `${FULL}.alias.vhd` }],
    [`${VDI}/${NEWEST}.alias.vhd`, { kind: 'delta', parent: `${DELTA}.alias.vhd` }],
  ]);
  return {
    vm: 'vm',
    folder: 'xo-vm-backups/vm',
    found: true,
    encrypted: false,
    entries: [...names.map((dt) => file(`${dt}.json`)), folder('vdis'), file('cache.json.gz')],
    vdis: [{ path: VDI, entries: [folder('data'), ...names.map((dt) => file(`${dt}.alias.vhd`))] }],
    data: new Map([[VDI, names.map((dt) => ({ path: `${VDI}/data/${dt}.vhd`, name: `${dt}.vhd`, finished: true }))]]),
    jsons: new Map(names.map((dt) => [`${dt}.json`, json({ mode: 'delta', vhds: { x: `${VDI}/${dt}.alias.vhd` } })])),
    aliases,
    links,
    problems: [],
    ...overrides,
  };
}
