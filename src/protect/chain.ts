import path from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { parseBackupDatetime } from '../remote/datetime.js';
import type { ListedEntry, UnitRef, VdiFolder } from '../remote/model.js';
import { byPath } from '../remote/read.js';
import type { RemoteRoot } from '../remote/root.js';
import { FOOTER_SIZE, HEADER_SIZE, headerOffset, vhdLink, type VhdLink } from '../remote/vhd-header.js';

// A chain longer than this is not one XO keeps (its retention merges older backups into the base).
const MAX_CHAIN = 1_000;
// A VHD directory's footer and header are 512 and 1024 bytes once decompressed; anything larger is not XO's.
const PART_LIMIT = 64 * 1024;

export interface ChainUnits {
  units: UnitRef[];
  // Some link could not be read (damaged header, parent missing): every older VHD of the folder, shared by every
  // disk of the folder that needs it (the same array: an attacker's folder can hold 20,000 files, a json name 4096).
  older?: readonly UnitRef[];
  unknown: boolean;
  // The parent a header names that is not in the folder (deleted, or never written): relative to the VM folder.
  missing?: string;
}

// What the chains of one reconcile share: parent links by VHD path, older VHDs by folder and date.
export interface ChainCache {
  links: Map<string, Promise<VhdLink>>;
  older: Map<string, Promise<UnitRef[]>>;
}

// What a backup's disk needs for XO to restore it: every VHD its parent links lead to, within its VDI folder
// (vhd-lib writes a delta's parent as the name of a sibling: "<dt>.alias.vhd" or "<dt>.vhd"). `resolveAlias` gives
// the directory an alias points to. Where a link cannot be read, the safe side: every older VHD of the folder.
export async function chainOf(
  // The VM folder, with the remote it is read through.
  vm: { remote: RemoteRoot; path: string },
  vdi: VdiFolder,
  disk: string,
  resolveAlias: (alias: string) => Promise<UnitRef | undefined>,
  { links, older }: ChainCache,
  // The folder's entries by name (built here when not given): a chain's links are looked up, not scanned for.
  names: ReadonlyMap<string, ListedEntry> = new Map(vdi.entries.map((e) => [e.name, e])),
): Promise<ChainUnits> {
  const units: UnitRef[] = [];
  const seen = new Set([disk]);
  const limit = parseBackupDatetime(disk) ?? Infinity;
  const olderKey = `${vdi.path}\0${limit}`;
  const fallback = async (missing?: string): Promise<ChainUnits> => {
    const found = older.get(olderKey) ?? olderVhds(vdi, limit, resolveAlias);
    older.set(olderKey, found);
    return missing === undefined
      ? { units, older: await found, unknown: true }
      : { units, older: await found, unknown: true, missing };
  };
  let current = disk;
  for (let depth = 0; depth < MAX_CHAIN; depth++) {
    const cached = links.get(`${vdi.path}/${current}`) ?? readLink(vm, vdi.path, current, resolveAlias);
    links.set(`${vdi.path}/${current}`, cached);
    const link = await cached;
    if (link.kind === 'base') return { units, unknown: false };
    const parent = link.kind === 'delta' ? siblingName(link.parent) : undefined;
    if (parent === undefined || seen.has(parent) || names.get(parent)?.isFile !== true)
      return fallback(parent !== undefined && !seen.has(parent) ? `${vdi.path}/${parent}` : undefined);
    seen.add(parent);
    units.push({ path: `${vdi.path}/${parent}`, recursive: false });
    if (parent.endsWith('.alias.vhd')) {
      const target = await resolveAlias(`${vdi.path}/${parent}`);
      if (target !== undefined) units.push(target);
    }
    current = parent;
  }
  return fallback();
}

// A parent named as XO names it: a plain VHD or alias name beside the child, never a path or a dot name.
function siblingName(name: string): string | undefined {
  const base = name.startsWith('./') ? name.slice(2) : name;
  return base.includes('/') || base.startsWith('.') || !base.endsWith('.vhd') ? undefined : base;
}

// The safe side when a chain cannot be read: every VHD (file, or alias and its directory) of the folder not newer than
// the disk (the disk itself included).
async function olderVhds(
  vdi: VdiFolder,
  limit: number,
  resolveAlias: (alias: string) => Promise<UnitRef | undefined>,
): Promise<UnitRef[]> {
  const units: UnitRef[] = [];
  for (const entry of vdi.entries) {
    if (!entry.isFile || !entry.name.endsWith('.vhd') || entry.name.startsWith('.')) continue;
    if ((parseBackupDatetime(entry.name) ?? -Infinity) > limit) continue;
    units.push({ path: `${vdi.path}/${entry.name}`, recursive: false });
    const target = entry.name.endsWith('.alias.vhd') ? await resolveAlias(`${vdi.path}/${entry.name}`) : undefined;
    if (target !== undefined) units.push(target);
  }
  return units;
}

async function readLink(
  { remote, path: vmFolder }: { remote: RemoteRoot; path: string },
  vdiPath: string,
  name: string,
  resolveAlias: (alias: string) => Promise<UnitRef | undefined>,
): Promise<VhdLink> {
  try {
    if (!name.endsWith('.alias.vhd')) return await flatLink(remote, path.join(vmFolder, vdiPath, name));
    const target = await resolveAlias(`${vdiPath}/${name}`);
    if (target === undefined) return { kind: 'unknown', why: 'the alias cannot be read' };
    return await directoryLink(remote, path.join(vmFolder, target.path));
  } catch (error) {
    return { kind: 'unknown', why: (error as Error).message };
  }
}

async function flatLink(remote: RemoteRoot, file: string): Promise<VhdLink> {
  const footer = await byPath.readRange(remote, file, 0, FOOTER_SIZE);
  if (footer === undefined) return { kind: 'unknown', why: 'no VHD footer' };
  const offset = headerOffset(footer);
  const header = offset === undefined ? undefined : await byPath.readRange(remote, file, offset, HEADER_SIZE);
  return vhdLink(footer, header);
}

// vhd-lib compresses every part of a VHD directory with the filters chunk-filters.json names.
async function directoryLink(remote: RemoteRoot, directory: string): Promise<VhdLink> {
  const filters = JSON.parse(
    (await byPath.readSmallFile(remote, path.join(directory, 'chunk-filters.json'))) ?? '[]',
  ) as unknown;
  const decode = (part: Buffer | undefined): Buffer | undefined => {
    if (part === undefined || !Array.isArray(filters) || filters.length === 0) return part;
    const options = { maxOutputLength: PART_LIMIT };
    if (filters.length === 1 && filters[0] === 'brotli') return brotliDecompressSync(part, options);
    if (filters.length === 1 && filters[0] === 'gzip') return gunzipSync(part, options);
    return undefined;
  };
  const footer = decode(await byPath.readSmallBuffer(remote, path.join(directory, 'footer'), PART_LIMIT));
  if (footer === undefined) return { kind: 'unknown', why: 'no VHD footer' };
  return vhdLink(footer, decode(await byPath.readSmallBuffer(remote, path.join(directory, 'header'), PART_LIMIT)));
}
