import path from 'node:path';
import type { Identity } from '../remote/identity.js';
import {
  findVmBackups,
  governingClaims,
  indexListing,
  isInWindow,
  MAX_REFERENCES_PER_JSON,
  readReferences,
  lookupListed,
  resolveAliasTarget,
  vmBackupParts,
  isAliasName,
  isFlatVhdName,
  type Claim,
  type UnitRef,
  type ListedEntry,
  type VdiFolder,
  type VmBackup,
  type VmListing,
} from '../remote/model.js';
import { yieldIfDue } from '../concurrency.js';
import { AppError } from '../errors.js';
import { isRealFolder } from '../remote/confine.js';
import { examine, examineAll, listFolder, listVdiFolders, readSmallFile, type Examined } from '../remote/read.js';
import { judgeCompletion, METADATA_LIMIT, parseObject } from '../backup/completion.js';
import type { BackupRef, LeafFolder, LockRequest, Refusal } from './context.js';
import { reconcileDateFolder } from './date-folder.js';
import { addRequest, isLockedAsIndexed, lockedForOlder, windowOfBackup } from './request.js';
import { claimsByName } from './by-name.js';
import { futureWarning } from './arrival.js';
import { chainOf, type ChainCache } from './chain.js';
import { jsonsOfFlatChain } from '../backup/flat-jsons.js';
import type { ProvenBackups } from './proven.js';
import type { FlagReader, IndexedUnit } from './flag-proof.js';

export interface ReconcileOptions {
  now: number;
  jsonSettleMs: number;
  // Backups proven locked before, skipped unless `full`; without it every backup is looked at.
  proven?: ProvenBackups;
  // Also lists the units locked as indexed in `flagsToRead`: their flags are read for the whole round (flag-proof.ts).
  full?: boolean;
  // Lock each backup's whole VHD chain until the newest backup needing it leaves its window (default true).
  protectChains?: boolean;
  // On encrypted remotes, reads the flag of a data directory that looks orphaned (remote/by-name.ts): a locked one stays
  // claimed. Without it such a directory's flag is not read, and it stays claimed (when in doubt, protect).
  flags?: FlagReader;
  // A backup named later than now + this is named in the future (default: maxClockJump's default, a day).
  maxClockJumpMs?: number;
}

// A complete VM backup this reconcile looked at: proven once every unit it governs is locked and indexed.
export interface ProvableBackup {
  json: string;
  identity: Identity;
}

export interface FolderReport {
  requests: LockRequest[];
  refusals: Refusal[];
  // Security warnings about what was locked all the same (a json naming more paths than XO ever writes).
  warnings?: Refusal[];
  // When an unfinished-looking json should be looked at again, if no event comes first.
  recheckAt?: number;
  // Empty when anything in the folder was refused: a folder with a gap proves nothing.
  provable: ProvableBackup[];
  // Jsons whose proof, if any, no longer holds (a refusal in the folder, a unit missing).
  unprovable?: string[];
  // A unit a complete backup names is not there (its folder moved aside, or not written yet): looked at again soon.
  unitsMissing?: boolean;
  // A VHD chain could not be read (encrypted, damaged header, parent missing): protected on the safe side.
  // Undefined when no chain was looked at (every backup proven, or chains not protected).
  chainUnknown?: boolean;
  // The backups looked at store flat .vhd files (undefined when none was looked at).
  flatVhds?: boolean;
  // A repair lift holds this VM until then: nothing of it was looked at or asked for (lift --vm --hold).
  heldUntil?: number;
  // A full proof's units locked as indexed, whose flags are still to be read (protect/flag-proof.ts).
  flagsToRead?: IndexedUnit[];
  // Backups of the folder past their window and left unlocked (on a first start: those past it by name).
  pastWindow?: number;
}

// Level-triggered: returns what of the completed backups inside their window is not locked yet.
// Idempotent: running it twice, or after a crash, asks for nothing that is already locked and unchanged.
export async function reconcileFolder(folder: LeafFolder, options: ReconcileOptions): Promise<FolderReport> {
  const report: FolderReport = { requests: [], refusals: [], provable: [] };
  if (!(await isConfined(folder, report))) return report;
  try {
    if (folder.kind === 'vm') await reconcileVmFolder(folder, options, report);
    else await reconcileDateFolder(folder, options, report);
  } catch (error) {
    // A folder swapped for a link after the check above: nothing was read through it; what was asked stands.
    if (!isLinkOnPath(error)) throw error;
    report.refusals.push({ path: folder.path, reason: (error as Error).message, security: true });
  }
  return report;
}

// The folder must be where its path says, with no symlink on the way: otherwise a planted link could point us at /etc.
async function isConfined(folder: LeafFolder, report: FolderReport): Promise<boolean> {
  const real = await isRealFolder(folder.remote, folder.path);
  if (real === false)
    report.refusals.push({
      path: folder.path,
      reason: 'the folder is reached through a symbolic link',
      security: true,
    });
  return real === true;
}

// A read that met a folder swapped for a link (remote/held.ts): nothing was read through it. A security refusal naming
// it; the rest of the folder goes on, so one planted link cannot keep a backup's other files unlocked.
async function unlessLinked<T>(report: FolderReport, at: string, read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (error) {
    if (!isLinkOnPath(error)) throw error;
    report.refusals.push({ path: at, reason: (error as Error).message, security: true });
    return undefined;
  }
}

function isLinkOnPath(error: unknown): boolean {
  return error instanceof AppError && error.code === 'REMOTE_LINK_ON_PATH';
}

// What a reconcile of one VM folder works on.
interface VmScan {
  folder: LeafFolder;
  options: ReconcileOptions;
  report: FolderReport;
  entries: ListedEntry[];
  // Listed only when some backup needs a look, so an all-proven folder costs a readdir and an lstat per json.
  vdis?: VdiFolder[];
  // The same listings by name.
  listing?: VmListing;
  // Backups with a unit missing (named by the json, or gone since the listing) are not proven: should the unit
  // appear, it must be looked at again.
  missing: Set<string>;
  // Parent links read this reconcile, by VHD path: the backups of a folder share most of their chain.
  chains?: ChainCache;
}

interface VmJson {
  backup: VmBackup;
  json: string;
  examined: Examined;
  // What its window counts from (protect/arrival.ts), and the arrival to record at its first lock.
  instant: number;
  arrived?: number;
  namedInTheFuture: boolean;
}

async function reconcileVmFolder(folder: LeafFolder, options: ReconcileOptions, report: FolderReport): Promise<void> {
  const heldUntil = folder.remote.index.holds.heldUntil(path.basename(folder.path), options.now);
  if (heldUntil !== undefined) {
    // Nothing of a held VM is proven either: once the hold ends, every backup of it is looked at again.
    options.proven?.retainOnly(folder.path, []);
    report.heldUntil = heldUntil;
    return;
  }
  const entries = await listFolder(folder.path);
  // By name, a backup past its window by name is never looked at; by arrival, its json is examined (one lstat).
  const byName = folder.remote.windowStart === 'name';
  const named = findVmBackups(entries.filter((e) => e.isFile).map((e) => e.name));
  const backups = named.filter((b) => !byName || isInWindow(b.instant, options.now, folder.remote.durationMs));
  const examined = await examineJsons(folder, backups, options);
  const jsons = examined.filter((item) => isInWindow(item.instant, options.now, folder.remote.durationMs));
  report.pastWindow = byName ? named.length - backups.length : examined.length - jsons.length;
  options.proven?.retainOnly(
    folder.path,
    jsons.map((item) => item.backup.metadata),
  );
  if (jsons.length === 0) return;
  const scan: VmScan = { folder, options, report, entries, missing: new Set() };
  const claims: Claim<BackupRef>[] = [];
  for (const item of toLookAt(scan, jsons)) for (const claim of await claimBackup(scan, item)) claims.push(claim);
  // Aliases are ciphertext there: which VHD directory is whose is read from names (remote/by-name.ts).
  if (folder.remote.encrypted && scan.vdis !== undefined) {
    // An encrypted VHD's parent cannot be read: with chains protected, the safe side is taken (and said).
    if (options.protectChains !== false && scan.vdis.length > 0) report.chainUnknown = true;
    const complete = completeBackups(claims);
    const named = complete.filter((b) => b.namedInTheFuture !== true);
    const future = complete.filter((b) => b.namedInTheFuture === true);
    const flags = options.flags && { reader: options.flags, within: folder.remote };
    claims.push(...(await claimsByName(folder.path, scan.vdis, named, options.protectChains !== false, flags)));
    // A backup named in the future takes part in no chain, and claims only what carries its own name.
    if (future.length > 0)
      claims.push(
        ...(await claimsByName(folder.path, scan.vdis, future, false, flags)).filter((c) =>
          isOwnUnit(c.unit, c.backup.datetime),
        ),
      );
  }
  if (scan.vdis !== undefined && options.protectChains !== false) report.chainUnknown ??= false;
  if (scan.vdis !== undefined)
    report.flatVhds = claims.some(
      (c) => c.unit.path.startsWith('vdis/') && !c.unit.recursive && isFlatVhdName(path.posix.basename(c.unit.path)),
    );
  await requestClaims(scan, claims);
  // A refusal anywhere in the folder, or a missing unit, takes the proof back: the next reconcile looks again.
  const considered = report.provable.map((backup) => backup.json);
  report.unprovable = report.refusals.length > 0 ? considered : considered.filter((json) => scan.missing.has(json));
  if (scan.missing.size > 0) report.unitsMissing = true;
  report.provable =
    report.refusals.length > 0 ? [] : report.provable.filter((backup) => !scan.missing.has(backup.json));
}

async function examineJsons(
  folder: LeafFolder,
  backups: readonly VmBackup[],
  options: ReconcileOptions,
): Promise<VmJson[]> {
  const jsons: VmJson[] = [];
  const paths = backups.map((backup) => path.join(folder.path, backup.metadata));
  // One walk from the root for all of them; a json behind a link (the VM folder swapped) stops the folder, as a read.
  for (const [i, examined] of (await examineAll(paths)).entries()) {
    if (examined instanceof AppError) throw examined;
    if (examined?.type !== 'file') continue;
    const backup = backups[i] as VmBackup;
    const json = paths[i] as string;
    const start = await windowOfBackup(folder, backup.instant, examined, { path: json, examined }, options);
    jsons.push({ backup, json, examined, ...start });
  }
  return jsons;
}

// What carries the backup's own datetime in its name (its json, xva, VHDs, aliases and their directories).
function isOwnUnit(unit: UnitRef, datetime: string): boolean {
  return path.posix.basename(unit.path).startsWith(datetime);
}

// A proven backup is skipped only when it is older than every backup looked at: a unit belongs to the newest backup
// that references it, so a newer one must take part even when proven.
function toLookAt({ folder, options }: VmScan, jsons: readonly VmJson[]): VmJson[] {
  const isProven = (item: VmJson): boolean =>
    options.full !== true &&
    options.proven?.isProven(folder.path, item.backup.metadata, item.examined.identity) === true;
  const oldestUnproven = Math.min(...jsons.filter((item) => !isProven(item)).map((item) => item.instant));
  return jsons.filter((item) => !(item.instant < oldestUnproven && isProven(item)));
}

// The units a complete backup claims; none while its json does not look complete yet.
async function claimBackup(
  scan: VmScan,
  { backup, json, examined, instant, arrived, namedInTheFuture }: VmJson,
): Promise<Claim<BackupRef>[]> {
  const { folder, options, report } = scan;
  const alreadyLocked = await isLockedAsIndexed(folder, instant, json, examined);
  // Read even when locked: the units it names must be checked at every reconcile, or one that failed to lock
  // while the json succeeded would never be tried again.
  const content = await readSmallFile(json, METADATA_LIMIT);
  if (examined.size > METADATA_LIMIT)
    (report.warnings ??= []).push({
      path: json,
      security: true,
      reason:
        `it holds ${examined.size} bytes, more than any json XO writes (${METADATA_LIMIT}): it is not read, ` +
        'and is locked with what its name gives once unchanged for 10 minutes',
    });
  // Parsed once: a json can be 4 MiB.
  const parsed = content === undefined ? undefined : parseObject(content);
  const completion = alreadyLocked
    ? { complete: true as const, completedAt: examined.mtimeMs }
    : judgeCompletion(parsed ?? content, examined.size, examined.mtimeMs, options.now, options.jsonSettleMs);
  if (!completion.complete) {
    if (completion.recheckAt !== undefined)
      report.recheckAt = Math.min(report.recheckAt ?? Infinity, completion.recheckAt);
    return [];
  }
  const ref: BackupRef = {
    label: json,
    datetime: backup.datetime,
    instant,
    completedAt: completion.completedAt,
    ...(namedInTheFuture ? { namedInTheFuture } : {}),
    ...(arrived === undefined ? {} : { arrived }),
  };
  if (namedInTheFuture)
    (report.warnings ??= []).push({
      path: json,
      security: true,
      reason: futureWarning(backup.datetime, instant),
    });
  const units = await unitsOf(scan, backup, json, parsed, !namedInTheFuture);
  report.provable.push({ json, identity: examined.identity });
  const own = namedInTheFuture ? units.filter((unit) => isOwnUnit(unit, backup.datetime)) : units;
  return own.map((unit) => ({ unit, backup: ref }));
}

async function unitsOf(
  scan: VmScan,
  backup: VmBackup,
  json: string,
  parsed: object | undefined,
  chains = true,
): Promise<UnitRef[]> {
  const { folder, entries, report } = scan;
  scan.vdis ??= await listVdiFolders(folder.path);
  const listing = (scan.listing ??= indexListing(entries, scan.vdis));
  const { units, aliases } = vmBackupParts(backup, entries, scan.vdis, listing);
  // A readable json names what its run wrote; that covers disks whose names do not carry the run's datetime.
  // Looked up by name, up to a cap: a json is written by the party we protect against, and can name 300,000 paths.
  const named = new Set(units.map((u) => u.path));
  const { references, named: count } = readReferences(parsed);
  if (count > MAX_REFERENCES_PER_JSON)
    (report.warnings ??= []).push({
      path: json,
      security: true,
      reason:
        `it names ${count} paths, more than any json XO writes (${MAX_REFERENCES_PER_JSON} at most are looked at): ` +
        'only those and what its name gives are locked',
    });
  for (const reference of references) {
    await yieldIfDue();
    const listed = lookupListed(reference, listing);
    if (listed === undefined) scan.missing.add(json);
    if (listed === undefined || named.has(reference)) continue;
    named.add(reference);
    units.push({ path: reference, recursive: listed.isDirectory });
    if (isAliasName(reference) && listed.isFile) aliases.push(reference);
  }
  if (!folder.remote.encrypted) {
    for (const alias of aliases) {
      const target = await aliasTarget(folder, alias, report);
      if (target !== undefined) units.push(target);
    }
    if (chains && scan.options.protectChains !== false) {
      const chain = await chainUnits(scan, units);
      for (const unit of [...chain, ...jsonsOfFlatChain(chain, listing)]) if (!named.has(unit.path)) units.push(unit);
    }
  }
  return units;
}

// Every VHD each disk of the backup is built on: XO cannot restore a delta whose parent is gone.
async function chainUnits(scan: VmScan, units: readonly UnitRef[]): Promise<UnitRef[]> {
  const { folder, report } = scan;
  const chain: UnitRef[] = [];
  const vdis = new Map((scan.vdis ?? []).map((v) => [v.path, v]));
  // Each unit once, and each folder's older VHDs once, however many disks fell back on them.
  const seen = new Set(units.map((u) => u.path));
  const olderAdded = new Set<readonly UnitRef[]>();
  const add = (found: readonly UnitRef[]): void => {
    for (const unit of found) {
      if (seen.has(unit.path)) continue;
      seen.add(unit.path);
      chain.push(unit);
    }
  };
  for (const unit of units) {
    const slash = unit.path.lastIndexOf('/');
    const vdi = vdis.get(unit.path.slice(0, slash));
    const disk = unit.path.slice(slash + 1);
    if (vdi === undefined || unit.recursive || !disk.endsWith('.vhd')) continue;
    const resolve = (alias: string): Promise<UnitRef | undefined> => aliasTarget(folder, alias, report);
    const names = scan.listing?.vdis.get(vdi.path);
    const cache = (scan.chains ??= { links: new Map(), older: new Map() });
    const found = await unlessLinked(report, path.join(folder.path, unit.path), () =>
      chainOf(folder.path, vdi, disk, resolve, cache, names),
    );
    if (found === undefined) continue;
    add(found.units);
    if (found.older !== undefined && !olderAdded.has(found.older)) {
      olderAdded.add(found.older);
      add(found.older);
    }
    if (found.unknown) report.chainUnknown = true;
  }
  return chain;
}

function completeBackups(claims: readonly Claim<BackupRef>[]): BackupRef[] {
  return [...new Map(claims.map((claim) => [claim.backup.label, claim.backup])).values()];
}

// Asks for each governing claim not locked as indexed yet; a unit gone since the listing makes its backup missing.
async function requestClaims(
  { folder, report, missing, options }: VmScan,
  claims: readonly Claim<BackupRef>[],
): Promise<void> {
  // Folders found real by the checks below (not by the one at the start: the listings and json reads came between).
  const real = new Set<string>();
  const isConfined = async (unit: string): Promise<boolean> =>
    (await isRealFolder(folder.remote, path.dirname(unit), real)) === true;
  const governing = governingClaims(claims);
  const units = governing.map((claim) => path.join(folder.path, claim.unit.path));
  // Examined in one walk from the root, then each acted on: the flag helper checks each again where it acts.
  const found = await examineAll(units);
  for (const [i, claim] of governing.entries()) {
    const unit = units[i] as string;
    const examined = await unlessLinked(report, unit, async () => {
      const result = found[i];
      if (result instanceof AppError) throw result;
      return result;
    });
    if (examined === undefined) {
      missing.add(claim.backup.label);
      continue;
    }
    if (await isLockedAsIndexed(folder, claim.backup.instant, unit, examined)) {
      // Only a full proof pays for reading flags: event reconciles take an unchanged identity for locked.
      if (options.full === true)
        (report.flagsToRead ??= []).push({ unit, examined, recursive: claim.unit.recursive, backup: claim.backup });
      continue;
    }
    // Outside a full proof (which reads flags), a file locked for an older backup is re-dated only. Never a directory:
    // its entry and top folder's ctime say nothing of what is below, which a lift or hold that stopped part-way left
    // unlocked (the helper clears the top last), so only the helper's walk can say the whole tree is locked.
    const lockedAs =
      options.full === true || claim.unit.recursive
        ? undefined
        : await lockedForOlder(folder, claim.backup.instant, unit, examined);
    addRequest(folder, unit, examined, claim.unit.recursive, claim.backup, report, await isConfined(unit), lockedAs);
  }
}

async function aliasTarget(folder: LeafFolder, alias: string, report: FolderReport): Promise<UnitRef | undefined> {
  const content = await unlessLinked(report, path.join(folder.path, alias), () =>
    readSmallFile(path.join(folder.path, alias)),
  );
  if (content === undefined) return undefined;
  const target = resolveAliasTarget(alias, content);
  if (target === undefined) {
    report.refusals.push({
      path: path.join(folder.path, alias),
      reason: `the alias points outside its VDI folder (${JSON.stringify(content.trim().slice(0, 200))})`,
      security: true,
    });
    return undefined;
  }
  const examined = await unlessLinked(report, path.join(folder.path, target), () =>
    examine(path.join(folder.path, target)),
  );
  if (examined === undefined) return undefined;
  // XO points aliases at VHD directories only (vhd-lib VhdAbstract.createAlias): a file there is not locked as one.
  return { path: target, recursive: true };
}
