import { closeSync, readSync } from 'node:fs';
import path from 'node:path';
import { AppError } from '../errors.js';
import { judgeCompletion, METADATA_LIMIT, parsesAsObject, settleTimeFor } from '../protect/completion.js';
import { chainOf } from '../protect/chain.js';
import { chainClaimsByName, isFinishedVhdDirectory, vhdDirectoryNames, type DataDirectory } from '../remote/by-name.js';
import {
  findVmBackups,
  indexListing,
  isAliasName,
  lookupListed,
  metadataReferences,
  resolveAliasTarget,
  vmBackupParts,
  type UnitRef,
  type VdiFolder,
  type VmBackup,
} from '../remote/model.js';
import type { VhdLink } from '../remote/vhd-header.js';
import { selectBackup, type Refusal } from './plan.js';
import { NotAFolder, type FolderTree } from './source.js';

export interface GatherOptions {
  // The remote's root as given, for the reads chain.ts does by path (VHD footers and headers).
  root: string;
  vm: string;
  backup?: string;
  encrypted: boolean;
  now: number;
  jsonSettleMs: number;
}

export interface Gathered {
  backup: VmBackup;
  // Relative to the remote root; a directory unit is copied whole.
  units: string[];
  notes: string[];
  problems: Refusal[];
}

// One backup of a VM and everything XO reads to restore it: its json, xva, disks, the VHD each alias points to, and
// each disk's whole parent chain (read from VHD headers; on an encrypted remote, whose headers are ciphertext, by name:
// every alias and VHD directory of its VDI folders up to its datetime).
export async function gatherBackup(tree: FolderTree, options: GatherOptions): Promise<Gathered> {
  const vmFolder = `xo-vm-backups/${options.vm}`;
  const problems: Refusal[] = [];
  const entries = safeList(tree, vmFolder, problems);
  if (problems.length > 0)
    throw new AppError('STAGE_SOURCE_REFUSED', `${vmFolder} is ${problems[0]!.reason}`, {
      value: vmFolder,
      hint: 'someone with access to the remote planted it: investigate before restoring from this remote',
    });
  if (tree.folder(vmFolder) === undefined)
    throw new AppError('STAGE_NOT_FOUND', `There is no folder ${vmFolder} on this remote`, {
      value: options.vm,
      hint: 'give the uuid of a VM with backups there: ls <remote root>/xo-vm-backups',
    });
  const settleMs = settleTimeFor(options.encrypted, options.jsonSettleMs);
  const contents = new Map<string, string | undefined>();
  const candidates = findVmBackups(entries.filter((e) => e.isFile).map((e) => e.name)).map((backup) => {
    const read = readJson(tree, `${vmFolder}/${backup.metadata}`);
    contents.set(backup.metadata, read?.content);
    const complete =
      read !== undefined &&
      judgeCompletion(read.content, read.size, read.mtimeMs, options.now, settleMs).complete === true;
    return { ...backup, complete };
  });
  const selected = selectBackup(candidates, options.backup);
  if (selected.backup === undefined)
    throw new AppError('STAGE_NOT_FOUND', `VM ${options.vm}: ${selected.reason}`, {
      value: options.backup ?? options.vm,
      hint: selected.hint,
    });
  const backup = selected.backup;
  const gathered: Gathered = { backup, units: [], notes: [], problems };
  const vdis = listVdis(tree, vmFolder, problems);
  const { units, aliases } = vmBackupParts(backup, entries, vdis);
  const content = contents.get(backup.metadata);
  const parsed = content !== undefined && parsesAsObject(content) ? (JSON.parse(content) as unknown) : undefined;
  const listing = indexListing(entries, vdis);
  for (const reference of metadataReferences(parsed)) {
    const listed = lookupListed(reference, listing);
    if (listed === undefined) {
      gathered.problems.push({
        path: `${vmFolder}/${reference}`,
        reason: "named by the backup's json, but missing (or not where XO writes it): XO cannot restore this backup",
      });
      continue;
    }
    if (units.some((u) => u.path === reference)) continue;
    units.push({ path: reference, recursive: listed.isDirectory });
    if (isAliasName(reference) && listed.isFile) aliases.push(reference);
  }
  const vmPath = path.join(options.root, vmFolder);
  if (options.encrypted) units.push(...chainByName(tree, vmFolder, vdis, backup, units, gathered));
  else {
    const resolve = async (alias: string): Promise<UnitRef | undefined> => aliasTarget(tree, vmFolder, alias, gathered);
    for (const alias of aliases) {
      const target = await resolve(alias);
      if (target !== undefined) units.push(target);
    }
    const cache = { links: new Map<string, Promise<VhdLink>>(), older: new Map<string, Promise<UnitRef[]>>() };
    for (const unit of [...units]) {
      const slash = unit.path.lastIndexOf('/');
      const vdi = vdis.find((v) => v.path === unit.path.slice(0, slash));
      const disk = unit.path.slice(slash + 1);
      if (vdi === undefined || unit.recursive || !disk.endsWith('.vhd')) continue;
      const chain = await chainOf(vmPath, vdi, disk, resolve, cache);
      for (const unit of [...chain.units, ...(chain.older ?? [])]) units.push(unit);
      if (chain.unknown)
        gathered.notes.push(
          `the parent chain of ${vmFolder}/${unit.path} could not be read (a damaged header, or a parent missing): ` +
            'every older VHD of its folder is copied; XO may still fail to restore it',
        );
    }
  }
  gathered.units = [...new Set(units.map((u) => `${vmFolder}/${u.path}`))];
  return gathered;
}

function readJson(
  tree: FolderTree,
  relative: string,
): { content: string | undefined; size: number; mtimeMs: number } | undefined {
  let opened;
  try {
    opened = tree.openFile(relative);
  } catch {
    return undefined;
  }
  try {
    const { stats } = opened;
    if (stats.size > METADATA_LIMIT) return { content: undefined, size: stats.size, mtimeMs: stats.mtimeMs };
    const buffer = Buffer.allocUnsafe(stats.size);
    let length = 0;
    for (let read = -1; read !== 0 && length < buffer.length; length += read)
      read = readSync(opened.fd, buffer, length, buffer.length - length, length);
    return { content: buffer.subarray(0, length).toString('utf8'), size: stats.size, mtimeMs: stats.mtimeMs };
  } finally {
    closeSync(opened.fd);
  }
}

// vdis/<job>/<vdi>/, two levels of plain folders; a folder behind a link is not entered (it is refused if used).
function listVdis(tree: FolderTree, vmFolder: string, problems: Refusal[]): VdiFolder[] {
  const folders: VdiFolder[] = [];
  const linked = (folder: string, name: string): void => {
    problems.push({ path: `${folder}/${name}`, reason: 'a symbolic link where XO writes a folder' });
  };
  for (const job of safeList(tree, `${vmFolder}/vdis`, problems)) {
    if (job.isSymlink) linked(`${vmFolder}/vdis`, job.name);
    if (!job.isDirectory || job.name.startsWith('.')) continue;
    for (const vdi of safeList(tree, `${vmFolder}/vdis/${job.name}`, problems)) {
      if (vdi.isSymlink) linked(`${vmFolder}/vdis/${job.name}`, vdi.name);
      if (!vdi.isDirectory || vdi.name.startsWith('.')) continue;
      const relative = `vdis/${job.name}/${vdi.name}`;
      folders.push({ path: relative, entries: safeList(tree, `${vmFolder}/${relative}`, problems) });
    }
  }
  return folders;
}

// A folder reached through a link is named, never entered.
function safeList(tree: FolderTree, relative: string, problems: Refusal[]): ReturnType<FolderTree['list']> {
  try {
    return tree.list(relative);
  } catch (error) {
    if (!(error instanceof NotAFolder)) throw error;
    if (!problems.some((p) => p.path === error.path)) problems.push({ path: error.path, reason: error.reason });
    return [];
  }
}

async function aliasTarget(
  tree: FolderTree,
  vmFolder: string,
  alias: string,
  gathered: Gathered,
): Promise<UnitRef | undefined> {
  const read = readJson(tree, `${vmFolder}/${alias}`);
  if (read?.content === undefined) return undefined;
  const target = resolveAliasTarget(alias, read.content);
  if (target === undefined) {
    const reason = `the alias points outside its VDI folder (${JSON.stringify(read.content.trim().slice(0, 200))})`;
    if (!gathered.problems.some((p) => p.path === `${vmFolder}/${alias}`))
      gathered.problems.push({ path: `${vmFolder}/${alias}`, reason });
    return undefined;
  }
  const entry = tree.entry(`${vmFolder}/${target}`);
  return entry === undefined ? undefined : { path: target, recursive: entry.type === 'directory' };
}

// Encrypted: aliases and VHD headers are ciphertext, so a disk's chain is every alias and finished VHD directory of
// its VDI folder at or before the backup (remote/by-name.ts, as the daemon protects them).
function chainByName(
  tree: FolderTree,
  vmFolder: string,
  vdis: readonly VdiFolder[],
  backup: VmBackup,
  units: readonly UnitRef[],
  gathered: Gathered,
): UnitRef[] {
  const found: UnitRef[] = [];
  for (const vdi of vdis) {
    if (!units.some((u) => u.path.startsWith(`${vdi.path}/`))) continue;
    const dataFolder = `${vdi.path}/data`;
    const directories: DataDirectory[] = [];
    for (const name of vhdDirectoryNames(safeList(tree, `${vmFolder}/${dataFolder}`, gathered.problems))) {
      const alias = `${name.slice(0, -'.vhd'.length)}.alias.vhd`;
      const finished =
        vdi.entries.some((e) => e.isFile && e.name === alias) ||
        isFinishedVhdDirectory(safeList(tree, `${vmFolder}/${dataFolder}/${name}`, gathered.problems));
      directories.push({ path: `${dataFolder}/${name}`, name, finished });
    }
    found.push(...chainClaimsByName(vdi, directories, [backup]).map((claim) => claim.unit));
  }
  if (found.length > 0)
    gathered.notes.push(
      "encrypted remote: VHD chains cannot be read, so every alias and VHD directory of the backup's VDI folders " +
        'up to its datetime is copied',
    );
  return found;
}
