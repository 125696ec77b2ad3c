import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { yieldIfDue } from '../concurrency.js';
import { isFinishedVhdDirectory, vhdDirectoryNames, type DataDirectory } from '../remote/by-name.js';
import { NotAFolder, readWhole, unlessLinked, type HeldEntry, type HeldRemote } from '../remote/held.js';
import { identityOf, type Identity } from '../remote/identity.js';
import { resolveAliasTarget, type ListedEntry, type VdiFolder } from '../remote/model.js';
import { classifyFolder } from '../remote/patterns.js';
import { FOOTER_SIZE, HEADER_SIZE, headerOffset, vhdLink, type VhdLink } from '../remote/vhd-header.js';
import { METADATA_LIMIT, parseObject } from './completion.js';

// A VM folder as read once, through a held remote: every listing, json, alias and VHD parent link a question about
// its backups needs (backup/vm.ts answers them, pure). Paths are relative to the VM folder.

export interface JsonFile {
  size: number;
  mtimeMs: number;
  identity: Identity;
  // Undefined past METADATA_LIMIT (never read: not a json XO writes).
  content?: string;
  // The content when it parses as a JSON object or array.
  parsed?: object;
}

// Something found where XO writes a folder that is not a plain folder (a symbolic link): never read through. Its
// path is relative to the remote's root.
export interface Problem {
  path: string;
  reason: string;
}

export interface VmSnapshot {
  vm: string;
  // Relative to the remote's root: "xo-vm-backups/<vm>".
  folder: string;
  // The VM folder is there and a plain folder.
  found: boolean;
  encrypted: boolean;
  entries: ListedEntry[];
  vdis: VdiFolder[];
  // Per VDI folder: the VHD directories of its data/ (finished: header, footer and bat present).
  data: ReadonlyMap<string, readonly DataDirectory[]>;
  // Per json name; a json that is not a regular file is absent.
  jsons: ReadonlyMap<string, JsonFile>;
  // Per alias (plain remotes: on encrypted ones aliases are ciphertext): what it points to, and what that is.
  aliases: ReadonlyMap<string, AliasTarget>;
  // Per VHD file or alias of a VDI folder (plain remotes): its footer and header's word on its parent.
  links: ReadonlyMap<string, VhdLink>;
  problems: Problem[];
}

export type AliasTarget =
  | { path: string; type: 'file' | 'directory' | 'other' | 'missing' }
  // The alias names a place outside its VDI folder (or anything but a *.vhd): its content, cut short.
  | { outside: string };

// A VHD directory's footer and header are 512 and 1024 bytes once decompressed; anything larger is not XO's.
const PART_LIMIT = 64 * 1024;
const ALIAS_LIMIT = 64 * 1024;

export async function readVmSnapshot(remote: HeldRemote, vm: string, encrypted: boolean): Promise<VmSnapshot> {
  const folder = `xo-vm-backups/${vm}`;
  const problems: Problem[] = [];
  const list = (relative: string): HeldEntry[] => {
    try {
      return remote.list(relative === '' ? folder : `${folder}/${relative}`);
    } catch (error) {
      if (!(error instanceof NotAFolder)) throw error;
      if (!problems.some((p) => p.path === error.path)) problems.push({ path: error.path, reason: error.reason });
      return [];
    }
  };
  const entries = list('');
  const found = problems.length === 0 && remote.folder(folder) !== undefined;
  const snapshot: VmSnapshot = {
    vm,
    folder,
    found,
    encrypted,
    entries: entries.map(listed),
    vdis: [],
    data: new Map(),
    jsons: readJsons(remote, folder, entries),
    aliases: new Map(),
    links: new Map(),
    problems,
  };
  if (!snapshot.jsons.size) return snapshot;
  snapshot.vdis = listVdis(list, (at, reason) => problems.push({ path: `${folder}/${at}`, reason }));
  const at = (relative: string): string => `${folder}/${relative}`;
  const data = new Map<string, DataDirectory[]>();
  const aliases = new Map<string, AliasTarget>();
  const links = new Map<string, VhdLink>();
  for (const vdi of snapshot.vdis) {
    await yieldIfDue();
    if (vdi.entries.some((e) => e.name === 'data' && e.isDirectory)) {
      const names = new Set(vdi.entries.map((e) => e.name));
      data.set(
        vdi.path,
        vhdDirectoryNames(list(`${vdi.path}/data`)).map((name) => ({
          path: `${vdi.path}/data/${name}`,
          name,
          // Only needed where aliases cannot be read; a directory with an alias beside it is finished by then.
          finished:
            names.has(`${name.slice(0, -'.vhd'.length)}.alias.vhd`) ||
            (encrypted && isFinishedVhdDirectory(list(`${vdi.path}/data/${name}`))),
        })),
      );
    }
    if (encrypted) continue;
    for (const entry of vdi.entries) {
      if (!entry.isFile || !entry.name.endsWith('.vhd') || entry.name.startsWith('.')) continue;
      await yieldIfDue();
      const vhd = `${vdi.path}/${entry.name}`;
      if (!entry.name.endsWith('.alias.vhd')) {
        links.set(vhd, unlessLinked(() => flatLink(remote, at(vhd))) ?? unknown('behind a symbolic link'));
        continue;
      }
      const target = unlessLinked(() => aliasTarget(remote, folder, vhd));
      if (target !== undefined) aliases.set(vhd, target);
      links.set(
        vhd,
        target !== undefined && 'path' in target && target.type === 'directory'
          ? (unlessLinked(() => directoryLink(remote, at(target.path))) ?? unknown('behind a symbolic link'))
          : unknown('the alias cannot be read'),
      );
    }
  }
  return { ...snapshot, data, aliases, links };
}

function listed({ name, isDirectory, isFile }: HeldEntry): ListedEntry {
  return { name, isDirectory, isFile };
}

function unknown(why: string): VhdLink {
  return { kind: 'unknown', why };
}

function readJsons(remote: HeldRemote, folder: string, entries: readonly HeldEntry[]): Map<string, JsonFile> {
  const jsons = new Map<string, JsonFile>();
  for (const entry of entries) {
    if (!entry.isFile || !entry.name.endsWith('.json') || entry.name.startsWith('.')) continue;
    const read = unlessLinked(() =>
      remote.readFile(`${folder}/${entry.name}`, (fd, size, stats) => {
        const file: JsonFile = { size, mtimeMs: Number(stats.mtimeMs), identity: identityOf(stats) };
        if (size > METADATA_LIMIT) return file;
        const content = remote.contentOf(`${folder}/${entry.name}`, readWhole(fd, size))?.toString('utf8');
        const parsed = content === undefined ? undefined : parseObject(content);
        return { ...file, ...(content === undefined ? {} : { content }), ...(parsed === undefined ? {} : { parsed }) };
      }),
    );
    if (read !== undefined) jsons.set(entry.name, read);
  }
  return jsons;
}

// vdis/<job>/<vdi>/: two levels of plain folders; a link there is a problem, never entered.
function listVdis(
  list: (relative: string) => HeldEntry[],
  problem: (relative: string, reason: string) => void,
): VdiFolder[] {
  const folders: VdiFolder[] = [];
  const folderOf = (entry: HeldEntry, parent: string): boolean => {
    if (entry.isSymlink) problem(`${parent}/${entry.name}`, 'a symbolic link where XO writes a folder');
    return entry.isDirectory && !entry.name.startsWith('.');
  };
  for (const job of list('vdis'))
    if (folderOf(job, 'vdis'))
      for (const vdi of list(`vdis/${job.name}`))
        if (folderOf(vdi, `vdis/${job.name}`)) {
          const relative = `vdis/${job.name}/${vdi.name}`;
          folders.push({ path: relative, entries: list(relative).map(listed) });
        }
  return folders;
}

function aliasTarget(remote: HeldRemote, folder: string, alias: string): AliasTarget | undefined {
  const content = remote.readSmall(`${folder}/${alias}`, ALIAS_LIMIT)?.toString('utf8');
  if (content === undefined) return undefined;
  const target = resolveAliasTarget(alias, content);
  if (target === undefined) return { outside: JSON.stringify(content.trim().slice(0, 200)) };
  const stats = remote.lstat(`${folder}/${target}`);
  const type = stats === undefined ? 'missing' : stats.isFile() ? 'file' : stats.isDirectory() ? 'directory' : 'other';
  return { path: target, type };
}

function flatLink(remote: HeldRemote, file: string): VhdLink {
  const footer = remote.readRange(file, 0, FOOTER_SIZE);
  if (footer === undefined) return unknown('no VHD footer');
  const offset = headerOffset(footer);
  return vhdLink(footer, offset === undefined ? undefined : remote.readRange(file, offset, HEADER_SIZE));
}

// vhd-lib compresses every part of a VHD directory with the filters chunk-filters.json names.
function directoryLink(remote: HeldRemote, directory: string): VhdLink {
  try {
    const filters: unknown = JSON.parse(
      remote.readSmall(`${directory}/chunk-filters.json`, PART_LIMIT)?.toString() ?? '[]',
    );
    const decode = (part: Buffer | undefined): Buffer | undefined => {
      if (part === undefined || !Array.isArray(filters) || filters.length === 0) return part;
      const options = { maxOutputLength: PART_LIMIT };
      if (filters.length === 1 && filters[0] === 'brotli') return brotliDecompressSync(part, options);
      if (filters.length === 1 && filters[0] === 'gzip') return gunzipSync(part, options);
      return undefined;
    };
    const footer = decode(remote.readSmall(`${directory}/footer`, PART_LIMIT));
    if (footer === undefined) return unknown('no VHD footer');
    return vhdLink(footer, decode(remote.readSmall(`${directory}/header`, PART_LIMIT)));
  } catch (error) {
    if (error instanceof NotAFolder) throw error;
    return unknown((error as Error).message);
  }
}

// The VM folders of a remote (xo-vm-backups/<vm>, never a dot name or XO's run locks), by name.
export function vmFolders(remote: HeldRemote): string[] {
  return (
    unlessLinked(() => remote.list('xo-vm-backups'))
      ?.filter((e) => e.isDirectory && classifyFolder(`xo-vm-backups/${e.name}`)?.kind === 'vm')
      .map((e) => e.name)
      .sort() ?? []
  );
}
