import { lstatSync } from 'node:fs';
import { yieldIfDue } from '../concurrency.js';
import { isFinishedVhdDirectory, vhdDirectoryNames, type DataDirectory } from '../remote/by-name.js';
import { NotAFolder, readWhole, unlessLinked, type HeldEntry, type HeldRemote } from '../remote/held.js';
import { identityOf, type Identity } from '../remote/identity.js';
import type { ListedEntry, VdiFolder } from '../remote/model.js';
import { classifyFolder } from '../remote/patterns.js';
import type { VhdLink } from '../remote/vhd-header.js';
import { METADATA_LIMIT, parseObject } from './completion.js';
import { vhdLinks, type AliasTarget } from './vhd-links.js';

// A VM folder as read once, through a held remote: every listing, json, alias and VHD parent link a question about
// its backups needs (backup/vm.ts answers them, pure). Paths are relative to the VM folder.

export interface JsonFile {
  size: number;
  mtimeMs: number;
  identity: Identity;
  // Its content was not asked for (SnapshotScope.select): only its entry was looked at.
  unread?: true;
  // Undefined past METADATA_LIMIT (never read: not a json XO writes).
  content?: string;
  // The content when it parses as a JSON object or array.
  parsed?: object;
}

// Something found where XO writes a folder that is not a plain folder, or a json that is not a plain file (a symbolic
// link): never read through. Its path is relative to the remote's root.
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
  // Per json name; a json that is not a regular file is absent (a symbolic link one is a problem).
  jsons: ReadonlyMap<string, JsonFile>;
  // Per alias (plain remotes: on encrypted ones aliases are ciphertext): what it points to, and what that is.
  aliases: ReadonlyMap<string, AliasTarget>;
  // Per VHD file or alias of a VDI folder (plain remotes): its footer and header's word on its parent.
  links: ReadonlyMap<string, VhdLink>;
  problems: Problem[];
}

// What of the folder is read. By default everything; a reconcile reads only the backups it looks at.
export interface SnapshotScope {
  // The jsons whose content is read, given every json's entry (lstat); the others are `unread`. No VDI folder is
  // listed when none is.
  select?: (jsons: ReadonlyMap<string, JsonFile>) => Promise<ReadonlySet<string>>;
  // VHD links and alias targets read on first `get`, through the descriptors already held, and kept (iterating gives
  // those read so far): a reconcile follows the chains of the backups it looks at, not every VHD of the folder. The
  // remote must stay open meanwhile.
  lazy?: boolean;
}

export type { AliasTarget };

export async function readVmSnapshot(
  remote: HeldRemote,
  vm: string,
  encrypted: boolean,
  scope: SnapshotScope = {},
): Promise<VmSnapshot> {
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
    jsons: await readJsons(remote, folder, entries, problems, scope.select),
    aliases: new Map(),
    links: new Map(),
    problems,
  };
  if (![...snapshot.jsons.values()].some((json) => json.unread !== true)) return snapshot;
  snapshot.vdis = listVdis(list, (at, reason) => problems.push({ path: `${folder}/${at}`, reason }));
  const data = new Map<string, DataDirectory[]>();
  const read = vhdLinks(remote, folder, snapshot.vdis, encrypted);
  for (const vdi of snapshot.vdis) {
    await yieldIfDue();
    if (vdi.entries.some((e) => e.name === 'data' && e.isDirectory))
      data.set(
        vdi.path,
        dataDirectories(list, vdi, encrypted, (at) =>
          problems.push({ path: `${folder}/${at}`, reason: LINKED_FOLDER }),
        ),
      );
    if (encrypted || scope.lazy === true) continue;
    for (const entry of vdi.entries) {
      await yieldIfDue();
      read.links.get(`${vdi.path}/${entry.name}`);
    }
  }
  return { ...snapshot, data, ...read };
}

// The VHD directories of a VDI folder's data/. One XO makes (mkdir -p, which follows a link) that is a link was planted:
// `linked` names it, to be settled (protect/).
function dataDirectories(
  list: (relative: string) => HeldEntry[],
  vdi: VdiFolder,
  encrypted: boolean,
  linked: (relative: string) => void,
): DataDirectory[] {
  const names = new Set(vdi.entries.map((e) => e.name));
  const listing = list(`${vdi.path}/data`);
  for (const entry of listing)
    if (entry.isSymlink && entry.name.endsWith('.vhd') && !entry.name.startsWith('.'))
      linked(`${vdi.path}/data/${entry.name}`);
  return vhdDirectoryNames(listing).map((name) => ({
    path: `${vdi.path}/data/${name}`,
    name,
    // Only needed where aliases cannot be read; a directory with an alias beside it is finished by then.
    finished:
      names.has(`${name.slice(0, -'.vhd'.length)}.alias.vhd`) ||
      (encrypted && isFinishedVhdDirectory(list(`${vdi.path}/data/${name}`))),
  }));
}

function listed({ name, isDirectory, isFile }: HeldEntry): ListedEntry {
  return { name, isDirectory, isFile };
}

async function readJsons(
  remote: HeldRemote,
  folder: string,
  entries: readonly HeldEntry[],
  problems: Problem[],
  select?: SnapshotScope['select'],
): Promise<Map<string, JsonFile>> {
  for (const entry of entries)
    if (entry.isSymlink && isJsonName(entry.name))
      problems.push({ path: `${folder}/${entry.name}`, reason: LINKED_JSON });
  const names = entries.filter((e) => e.isFile && isJsonName(e.name)).map((e) => e.name);
  if (select === undefined) return new Map(names.flatMap((name) => readJson(remote, `${folder}/${name}`, name)));
  // Entries first (one lstat each, through the folder's descriptor), then the content of those selected.
  const found = new Map<string, JsonFile>();
  for (const name of names) {
    await yieldIfDue();
    const place = unlessLinked(() => remote.pathOf(`${folder}/${name}`));
    const stats = place === undefined ? undefined : lstatSync(place, { bigint: true, throwIfNoEntry: false });
    if (stats?.isFile() !== true) continue;
    const file = { size: Number(stats.size), mtimeMs: Number(stats.mtimeMs), identity: identityOf(stats) };
    found.set(name, { ...file, unread: true });
  }
  for (const name of await select(found)) {
    const entry = found.get(name);
    const read = entry && readJson(remote, `${folder}/${name}`, name)[0]?.[1];
    // Judged by the entry the selection saw; what it holds, as read now.
    if (entry !== undefined && read !== undefined)
      found.set(name, { ...read, size: entry.size, mtimeMs: entry.mtimeMs, identity: entry.identity });
  }
  return found;
}

function isJsonName(name: string): boolean {
  return name.endsWith('.json') && !name.startsWith('.');
}

// XO writes a json in place, never a link (its writers' outputFile): one there was planted, and is never followed.
const LINKED_JSON =
  "a symbolic link where XO writes a backup's json (XO never writes one): it is not followed and not locked; " +
  'find out who can write to the remote, then remove the link';

function readJson(remote: HeldRemote, relative: string, name: string): [string, JsonFile][] {
  const read = unlessLinked(() =>
    remote.readFile(relative, (fd, size, stats) => {
      const file: JsonFile = { size, mtimeMs: Number(stats.mtimeMs), identity: identityOf(stats) };
      if (size > METADATA_LIMIT) return file;
      const content = remote.contentOf(relative, readWhole(fd, size))?.toString('utf8');
      const parsed = content === undefined ? undefined : parseObject(content);
      return { ...file, ...(content === undefined ? {} : { content }), ...(parsed === undefined ? {} : { parsed }) };
    }),
  );
  return read === undefined ? [] : [[name, read]];
}

const LINKED_FOLDER = 'a symbolic link where XO writes a folder';

// vdis/<job>/<vdi>/: two levels of plain folders; a link there is a problem, never entered.
function listVdis(
  list: (relative: string) => HeldEntry[],
  problem: (relative: string, reason: string) => void,
): VdiFolder[] {
  const folders: VdiFolder[] = [];
  const folderOf = (entry: HeldEntry, parent: string): boolean => {
    // A dot name is never XO's folder (the daemon's own `.<name>.linked-<time>` among them): not looked at.
    if (entry.isSymlink && !entry.name.startsWith('.')) problem(`${parent}/${entry.name}`, LINKED_FOLDER);
    return entry.isDirectory && !entry.name.startsWith('.');
  };
  for (const job of list('vdis'))
    if (folderOf(job, 'vdis'))
      for (const vdi of list(`vdis/${job.name}`))
        if (folderOf(vdi, `vdis/${job.name}`)) {
          const relative = `vdis/${job.name}/${vdi.name}`;
          const entries = list(relative);
          // data/, where XO makes each VHD directory: a link there is planted too (settled as above, by protect/).
          if (entries.some((e) => e.name === 'data' && e.isSymlink)) problem(`${relative}/data`, LINKED_FOLDER);
          folders.push({ path: relative, entries: entries.map(listed) });
        }
  return folders;
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
