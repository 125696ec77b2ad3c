import path from 'node:path';
import type { StoredEntry } from '../index/store.js';
import { parseBackupDatetime } from '../remote/datetime.js';
import { groupByPath } from '../lift/plan.js';
import { chainOf, type ChainCache } from '../protect/chain.js';
import { METADATA_LIMIT, parsesAsObject } from '../protect/completion.js';
import {
  findVmBackups,
  isInWindow,
  metadataReferences,
  resolveAliasTarget,
  vmBackupParts,
  type ListedEntry,
  type UnitRef,
  type VdiFolder,
  type VmBackup,
} from '../remote/model.js';
import { AppError } from '../errors.js';
import { examine, listFolder, listVdiFolders, readSmallFile } from '../remote/read.js';
import { findLeafFolders } from '../remote/scan.js';
import type { VhdLink } from '../remote/vhd-header.js';
import {
  judgeRemote,
  type RestorePointModel,
  type RestorePoints,
  type UnitFacts,
  type VmModel,
} from './restore-points.js';

export interface SurveyedRemote {
  root: string;
  encrypted: boolean;
  durationMs: number;
}

// Reads the immutable attribute of paths (the attributes adapter); undefined: the path is gone.
export type ReadImmutable = (paths: readonly string[]) => Promise<Map<string, boolean | undefined>>;

// What one backup of a VM folder says about how XO's job writes it (docs/operations.md, "XO settings").
export interface BackupShape {
  backup: string;
  instant: number;
  inWindow: boolean;
  // From a readable json: the schedule and mode that wrote it.
  scheduleId?: string;
  mode?: string;
  // Every disk of the backup is a base (a full, or the base XO merged forward); undefined: not known.
  full?: boolean;
  // The oldest datetime its disks' chains reach back to (undefined: not known).
  baseInstant?: number;
}

export interface SurveyedVm {
  vm: string;
  folder: string;
  model: VmModel;
  backups: BackupShape[];
  // A merge XO left unfinished (a ".<parent>.merge.json" in a VDI folder): XO's retention met a locked unit.
  blockedMerges: string[];
}

// Reads what the remote holds, at the time asked, into the pure model (status/restore-points.ts). Cost per VM folder:
// the listings the reconcile does, each json read, per disk its alias and the footer and header of each VHD of its
// chain (shared by the backups of a VDI folder), and one lstat per unit. The immutable attribute is read (lsattr,
// batched) only for units that are not the very inode locked, unchanged since: none on a protected remote.
export async function surveyRemote(
  remote: SurveyedRemote,
  stored: readonly StoredEntry[],
  readImmutable: ReadImmutable,
  now: number,
): Promise<SurveyedVm[]> {
  const indexed = new Map(groupByPath(stored).units.map((unit) => [unit.path, unit]));
  const vms: SurveyedVm[] = [];
  for (const leaf of await findLeafFolders(remote.root))
    if (leaf.kind === 'vm') vms.push(await surveyVmFolder(remote, leaf.path, now));
  const facts = new Map<string, UnitFacts>();
  const toRead: string[] = [];
  for (const { model, folder } of vms) {
    for (const unit of model.units.keys()) {
      const absolute = path.join(folder, unit);
      const examined = await unlessLinked(examine(absolute));
      const entry = indexed.get(absolute);
      const identity = entry?.identity;
      const fact: UnitFacts = {
        exists: examined !== undefined,
        unchangedSinceLock:
          examined !== undefined &&
          identity !== undefined &&
          identity.dev === examined.identity.dev &&
          identity.ino === examined.identity.ino &&
          identity.ctimeNs === examined.identity.ctimeNs,
        ...(entry === undefined ? {} : { indexedUntil: entry.governingInstant + remote.durationMs }),
      };
      facts.set(absolute, fact);
      (model.units as Map<string, UnitFacts>).set(unit, fact);
      if (fact.exists && !fact.unchangedSinceLock) toRead.push(absolute);
    }
  }
  const immutable = toRead.length === 0 ? new Map<string, boolean | undefined>() : await readImmutable(toRead);
  for (const [absolute, value] of immutable) {
    const fact = facts.get(absolute);
    if (fact !== undefined && value !== undefined) fact.immutable = value;
  }
  return vms;
}

export async function surveyRestorePoints(
  remote: SurveyedRemote,
  stored: readonly StoredEntry[],
  readImmutable: ReadImmutable,
  now: number,
): Promise<RestorePoints> {
  const vms = await surveyRemote(remote, stored, readImmutable, now);
  return judgeRemote(
    vms.map((vm) => vm.model),
    now,
  );
}

async function surveyVmFolder(remote: SurveyedRemote, folder: string, now: number): Promise<SurveyedVm> {
  const vm = path.basename(folder);
  const entries = await listFolder(folder);
  const all = findVmBackups(entries.filter((e) => e.isFile).map((e) => e.name));
  const units = new Map<string, UnitFacts>();
  const points: RestorePointModel[] = [];
  const backups: BackupShape[] = [];
  const vdis = all.length === 0 ? [] : await listVdiFolders(folder);
  const links: ChainCache = { links: new Map<string, Promise<VhdLink>>(), older: new Map() };
  for (const backup of all) {
    const inWindow = isInWindow(backup.instant, now, remote.durationMs);
    const content = remote.encrypted
      ? undefined
      : await unlessLinked(readSmallFile(path.join(folder, backup.metadata), METADATA_LIMIT));
    const parsed = content !== undefined && parsesAsObject(content) ? (JSON.parse(content) as unknown) : undefined;
    // A json XO cannot read is no restore point; on a plain remote that is one still being written.
    if (!remote.encrypted && parsed === undefined) continue;
    const point = await pointOf(remote, folder, backup, entries, vdis, parsed, links);
    backups.push({ ...shapeOf(parsed, point), backup: backup.metadata, instant: backup.instant, inWindow });
    if (!inWindow) continue;
    points.push(point.model);
    for (const unit of [...point.model.own, ...point.model.chain])
      units.set(unit, { exists: false, unchangedSinceLock: false });
  }
  const blockedMerges = vdis.flatMap((vdi) =>
    vdi.entries.filter((e) => e.isFile && /^\..*\.merge\.json$/.test(e.name)).map((e) => `${vdi.path}/${e.name}`),
  );
  return { vm, folder, model: { vm, points, units }, backups, blockedMerges };
}

interface SurveyedPoint {
  model: RestorePointModel;
  // Per own disk: a base (true) or a delta (false); undefined when not read.
  bases: (boolean | undefined)[];
  baseInstant?: number;
}

async function pointOf(
  remote: SurveyedRemote,
  folder: string,
  backup: VmBackup,
  entries: readonly ListedEntry[],
  vdis: readonly VdiFolder[],
  parsed: unknown,
  links: ChainCache,
): Promise<SurveyedPoint> {
  const { units, aliases } = vmBackupParts(backup, entries, vdis);
  const own = units.map((u) => u.path);
  // What the json names is part of the backup even when it is gone: that is a missing unit.
  for (const reference of metadataReferences(parsed))
    if (isXoPlace(reference) && !own.includes(reference)) {
      own.push(reference);
      if (reference.endsWith('.alias.vhd')) aliases.push(reference);
    }
  const disks = own.filter((p) => p.startsWith('vdis/') && p.endsWith('.vhd'));
  if (remote.encrypted) {
    // Aliases are ciphertext: each backup's own VHD directory is found by name, its chain cannot be read.
    for (const alias of aliases) {
      const directory = `${path.posix.dirname(alias)}/data/${path.posix.basename(alias, '.alias.vhd')}.vhd`;
      if ((await unlessLinked(examine(path.join(folder, directory)))) !== undefined) own.push(directory);
    }
    const model = { backup: backup.metadata, instant: backup.instant, own, chain: [], chainKnown: disks.length === 0 };
    return { model, bases: disks.map(() => undefined) };
  }
  const resolve = async (alias: string): Promise<UnitRef | undefined> => {
    const target = resolveAliasTarget(alias, (await unlessLinked(readSmallFile(path.join(folder, alias)))) ?? '');
    return target === undefined ? undefined : { path: target, recursive: true };
  };
  for (const alias of aliases) {
    const target = await resolve(alias);
    if (target !== undefined && !own.includes(target.path)) own.push(target.path);
  }
  const chain: string[] = [];
  const bases: (boolean | undefined)[] = [];
  let chainKnown = true;
  let baseInstant: number | undefined = backup.instant;
  for (const disk of disks) {
    const slash = disk.lastIndexOf('/');
    const vdi = vdis.find((v) => v.path === disk.slice(0, slash));
    if (vdi === undefined) {
      chainKnown = false;
      bases.push(undefined);
      continue;
    }
    const found = await chainOf(folder, vdi, disk.slice(slash + 1), resolve, links);
    for (const unit of [...found.units, ...(found.older ?? [])]) chain.push(unit.path);
    if (found.missing !== undefined) chain.push(found.missing);
    chainKnown &&= !found.unknown;
    bases.push(found.unknown ? undefined : found.units.length === 0);
    const oldest = found.units.map((u) => parseName(u.path)).filter((i): i is number => i !== undefined);
    if (found.unknown) baseInstant = undefined;
    else if (baseInstant !== undefined) baseInstant = Math.min(baseInstant, ...oldest);
  }
  const model = { backup: backup.metadata, instant: backup.instant, own, chain: [...new Set(chain)], chainKnown };
  return { model, bases, ...(baseInstant === undefined ? {} : { baseInstant }) };
}

// Only where XO writes: an .xva at the top of the VM folder, a VHD or alias directly in a VDI folder.
// Behind a folder swapped for a link (remote/held.ts): not read, so not there; a unit there counts as missing. A
// survey must not fail on one planted link: the daemon's reconcile says it as a security warning.
async function unlessLinked<T>(read: Promise<T | undefined>): Promise<T | undefined> {
  try {
    return await read;
  } catch (error) {
    if (error instanceof AppError && error.code === 'REMOTE_LINK_ON_PATH') return undefined;
    throw error;
  }
}

function isXoPlace(reference: string): boolean {
  return /^[^/.][^/]*\.xva$/.test(reference) || /^vdis\/[^/]+\/[^/]+\/[^/.][^/]*\.vhd$/.test(reference);
}

function parseName(unitPath: string): number | undefined {
  return parseBackupDatetime(path.posix.basename(unitPath));
}

function shapeOf(parsed: unknown, point: SurveyedPoint): Omit<BackupShape, 'backup' | 'instant' | 'inWindow'> {
  const json = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as {
    scheduleId?: unknown;
    mode?: unknown;
  };
  const full =
    point.bases.length === 0
      ? json.mode === 'full'
        ? true
        : undefined
      : point.bases.every((b) => b === true)
        ? true
        : point.bases.some((b) => b === false)
          ? false
          : undefined;
  return {
    ...(typeof json.scheduleId === 'string' ? { scheduleId: json.scheduleId } : {}),
    ...(typeof json.mode === 'string' ? { mode: json.mode } : {}),
    ...(full === undefined ? {} : { full }),
    ...(point.baseInstant === undefined ? {} : { baseInstant: point.baseInstant }),
  };
}
