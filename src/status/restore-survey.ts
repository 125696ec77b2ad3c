import path from 'node:path';
import { readVmSnapshot, vmFolders, type VmSnapshot } from '../backup/snapshot.js';
import { backupsOf, isRestorePoint, restorePointOf, unitsOf, type BackupUnits } from '../backup/vm.js';
import { entryName } from '../index/entry.js';
import type { IndexStore, StoredEntry } from '../index/store.js';
import { foldGoverning, type GoverningFacts } from '../index/units.js';
import { isInWindow } from '../remote/model.js';
import { parseBackupDatetime } from '../remote/datetime.js';
import { unlessLinked, type HeldRemote } from '../remote/held.js';
import { examineIn } from '../remote/read.js';
import { leftoverBackups, unfreedVdis, type LeftoverBackup, type UnfreedVdi } from './chain-cost.js';
import { judgeRemote, type RestorePoints, type UnitFacts, type VmModel } from './restore-points.js';

export interface SurveyedRemote {
  encrypted: boolean;
  // The duration + its slack (remote/model.ts windowMsOf).
  windowMs: number;
  // Undefined: on (the default).
  protectChains?: boolean;
}

// Reads the immutable flag of paths (the attributes adapter); undefined: the path is gone.
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
  // Disks of backups XO's retention removed, still there; VDI folders whose chains are never freed (status/chain-cost.ts).
  leftovers: LeftoverBackup[];
  unfreed: UnfreedVdi[];
}

// The restore points of a remote, at the time asked: each VM folder read once (backup/snapshot.ts) and asked what its
// backups need (backup/vm.ts), then one lstat per unit and the immutable flag of every unit that exists: a unit
// counts as locked only when its flag is on, whatever the index says.
export async function surveyRemote(
  held: HeldRemote,
  remote: SurveyedRemote,
  stored: readonly StoredEntry[],
  readImmutable: ReadImmutable,
  now: number,
): Promise<SurveyedVm[]> {
  const vms: SurveyedVm[] = [];
  await surveyVms(held, remote, lookupIn(stored), readImmutable, now, (chunk) => vms.push(...chunk));
  return vms;
}

// What the index says of absolute paths: each one's governing facts (absent: no entry names it).
export type IndexLookup = (paths: readonly string[]) => Promise<ReadonlyMap<string, GoverningFacts>>;

// From the whole index in memory (status, check and verify hold it anyway).
export function lookupIn(stored: readonly StoredEntry[]): IndexLookup {
  const byPath = new Map<string, GoverningFacts>();
  foldGoverning(
    byPath,
    stored.map((item) => item.entry),
  );
  return () => Promise.resolve(byPath);
}

// The daemon's, which counts every rescanEvery beside its full proof: of the whole index it holds each bucket's entry
// names only, each as the first 28 bits of its hash (a small integer), and reads the entries of the paths it is asked
// about (a name that shares those bits costs one stat that finds nothing).
export async function lookupByName(index: Pick<IndexStore, 'listDays' | 'streamNames' | 'read'>): Promise<IndexLookup> {
  const days = new Map<string, Set<number>>();
  for (const day of await index.listDays()) {
    const keys = new Set<number>();
    for await (const names of index.streamNames(day)) for (const name of names) keys.add(nameKey(name));
    days.set(day, keys);
  }
  return async (paths) => {
    const byPath = new Map<string, GoverningFacts>();
    const keyed = paths.map((unit) => ({ unit, key: nameKey(entryName(unit)) }));
    // Oldest bucket first, as groupByPath reads them.
    for (const [day, keys] of days)
      for (const { unit, key } of keyed) if (keys.has(key)) foldGoverning(byPath, [await index.read(day, unit)]);
    return byPath;
  };
}

function nameKey(name: string): number {
  return Number.parseInt(name.slice(0, 7), 16);
}

// VM folders surveyed at once: the daemon keeps only counts, so its memory follows this, not the remote.
const VMS_PER_CHUNK = 128;

// The same, handing the VMs over a chunk at a time (their flags read in one helper run per chunk).
export async function surveyVms(
  held: HeldRemote,
  remote: SurveyedRemote,
  lookup: IndexLookup,
  readImmutable: ReadImmutable,
  now: number,
  take: (vms: SurveyedVm[]) => void,
): Promise<void> {
  let chunk: SurveyedVm[] = [];
  for (const vm of vmFolders(held)) {
    const snapshot = await readVmSnapshot(held, vm, remote.encrypted);
    const folder = path.join(held.root, snapshot.folder);
    const jsons = await lookup(backupsOf(snapshot).map((backup) => path.join(folder, backup.metadata)));
    chunk.push(surveyVm(snapshot, remote, now, folder, jsons));
    if (chunk.length < VMS_PER_CHUNK) continue;
    take(await withFacts(held, remote, lookup, readImmutable, chunk));
    chunk = [];
  }
  if (chunk.length > 0) take(await withFacts(held, remote, lookup, readImmutable, chunk));
}

// Each unit's facts: there or not, unchanged since its lock, its window by the index, its flag.
async function withFacts(
  held: HeldRemote,
  remote: SurveyedRemote,
  lookup: IndexLookup,
  readImmutable: ReadImmutable,
  vms: SurveyedVm[],
): Promise<SurveyedVm[]> {
  const units = vms.flatMap(({ model, folder }) => [...model.units.keys()].map((unit) => path.join(folder, unit)));
  const indexed = await lookup(units);
  const facts = new Map<string, UnitFacts>();
  for (const { model, folder } of vms)
    for (const unit of model.units.keys()) {
      const absolute = path.join(folder, unit);
      // Behind a planted link: missing here; the daemon's reconcile says it as a security warning.
      const examined = unlessLinked(() => examineIn(held, path.relative(held.root, absolute)));
      const identity = indexed.get(absolute)?.identity;
      const until = indexed.get(absolute)?.governingInstant;
      const fact: UnitFacts = {
        exists: examined !== undefined,
        unchangedSinceLock:
          examined !== undefined &&
          identity?.dev === examined.identity.dev &&
          identity.ino === examined.identity.ino &&
          identity.ctimeNs === examined.identity.ctimeNs,
        ...(until === undefined ? {} : { indexedUntil: until + remote.windowMs }),
        ...(indexed.get(absolute)?.unlocking === true ? { unlocking: true } : {}),
      };
      facts.set(absolute, fact);
      (model.units as Map<string, UnitFacts>).set(unit, fact);
    }
  const existing = [...facts].filter(([, fact]) => fact.exists).map(([absolute]) => absolute);
  const flags = existing.length === 0 ? new Map<string, boolean | undefined>() : await readImmutable(existing);
  for (const [absolute, flag] of flags) {
    const fact = facts.get(absolute);
    if (fact !== undefined && flag !== undefined) fact.immutable = flag;
  }
  return vms;
}

export async function surveyRestorePoints(
  held: HeldRemote,
  remote: SurveyedRemote,
  stored: readonly StoredEntry[],
  readImmutable: ReadImmutable,
  now: number,
): Promise<RestorePoints> {
  const vms = await surveyRemote(held, remote, stored, readImmutable, now);
  return judgeRemote(
    vms.map((vm) => vm.model),
    now,
  );
}

// A backup's window counts from its index entry's instant when later than its name's (its arrival, protect/arrival.ts).
function surveyVm(
  snapshot: VmSnapshot,
  remote: SurveyedRemote,
  now: number,
  folder: string,
  indexed: ReadonlyMap<string, { governingInstant: number }>,
): SurveyedVm {
  const { windowMs } = remote;
  const points: VmModel['points'][number][] = [];
  const units = new Map<string, UnitFacts>();
  const backups: BackupShape[] = [];
  for (const backup of backupsOf(snapshot)) {
    // A json XO cannot read is no restore point; on a plain remote that is one still being written.
    if (!isRestorePoint(snapshot, backup)) continue;
    const arrived = indexed.get(path.join(folder, backup.metadata))?.governingInstant ?? backup.instant;
    const inWindow = isInWindow(Math.max(backup.instant, arrived), now, windowMs);
    const found = unitsOf(snapshot, backup);
    const shape = shapeOf(snapshot.jsons.get(backup.metadata)?.parsed, found, backup.instant);
    backups.push({ ...shape, backup: backup.metadata, instant: backup.instant, inWindow });
    if (!inWindow) continue;
    const point = restorePointOf(snapshot, backup, found);
    points.push(point);
    for (const unit of [...point.own, ...point.chain]) units.set(unit, { exists: false, unchangedSinceLock: false });
  }
  const blockedMerges = snapshot.vdis.flatMap((vdi) =>
    vdi.entries.filter((e) => e.isFile && /^\..*\.merge\.json$/.test(e.name)).map((e) => `${vdi.path}/${e.name}`),
  );
  const byName = snapshot.encrypted && remote.protectChains !== false;
  return {
    vm: snapshot.vm,
    folder,
    model: { vm: snapshot.vm, points, units },
    backups,
    blockedMerges,
    leftovers: leftoverBackups(snapshot),
    unfreed: byName ? unfreedVdis(snapshot, now, windowMs) : [],
  };
}

function shapeOf(
  parsed: object | undefined,
  { disks }: BackupUnits,
  instant: number,
): Omit<BackupShape, 'backup' | 'instant' | 'inWindow'> {
  const json = (parsed ?? {}) as { scheduleId?: unknown; mode?: unknown };
  const bases = disks.map((d) => (d.unknown ? undefined : d.units.length === 0));
  const full =
    bases.length === 0
      ? json.mode === 'full'
        ? true
        : undefined
      : bases.every((b) => b === true)
        ? true
        : bases.some((b) => b === false)
          ? false
          : undefined;
  const known = disks.every((d) => !d.unknown);
  const oldest = disks.flatMap((d) => d.units.map((u) => parseBackupDatetime(path.posix.basename(u.path))));
  const baseInstant = known ? Math.min(instant, ...oldest.filter((i): i is number => i !== undefined)) : undefined;
  return {
    ...(typeof json.scheduleId === 'string' ? { scheduleId: json.scheduleId } : {}),
    ...(typeof json.mode === 'string' ? { mode: json.mode } : {}),
    ...(full === undefined ? {} : { full }),
    ...(baseInstant === undefined ? {} : { baseInstant }),
  };
}
