import path from 'node:path';
import { isVmMetadataName, parseBackupDatetime } from './datetime.js';

// A pure model of what XO wrote: listings in, backups and their protection units out. No I/O here.

export interface ListedEntry {
  name: string;
  isDirectory: boolean;
  isFile: boolean;
}

export interface VdiFolder {
  // Relative to the VM folder: "vdis/<jobId>/<vdiUuid>".
  path: string;
  entries: ListedEntry[];
}

// A VM folder's listings by name, built once per reconcile: a json can name hundreds of thousands of paths, and
// each must cost one lookup, not a scan of a listing an attacker can make as long as it likes.
export interface VmListing {
  top: ReadonlyMap<string, ListedEntry>;
  vdis: ReadonlyMap<string, ReadonlyMap<string, ListedEntry>>;
}

export function indexListing(folder: readonly ListedEntry[], vdis: readonly VdiFolder[]): VmListing {
  const byName = (entries: readonly ListedEntry[]): Map<string, ListedEntry> =>
    new Map(entries.map((e) => [e.name, e]));
  return { top: byName(folder), vdis: new Map(vdis.map((v) => [v.path, byName(v.entries)])) };
}

export interface VmBackup {
  datetime: string;
  instant: number;
  metadata: string;
}

// A unit of protection, relative to its VM folder: a file, or a VHD directory locked as one (recursive).
export interface UnitRef {
  path: string;
  recursive: boolean;
}

export function findVmBackups(names: readonly string[]): VmBackup[] {
  const backups: VmBackup[] = [];
  for (const name of names) {
    if (!isVmMetadataName(name)) continue;
    const instant = parseBackupDatetime(name);
    if (instant === undefined) continue;
    backups.push({ datetime: name.slice(0, -'.json'.length), instant, metadata: name });
  }
  return backups.sort((a, b) => a.instant - b.instant);
}

// The parts of one run found by name: its json, xva and checksum, and in each VDI folder its flat VHD,
// VHD directory or alias. Aliases are returned apart: what they point to needs a read.
export function vmBackupParts(backup: VmBackup, listing: VmListing): { units: UnitRef[]; aliases: string[] } {
  const units: UnitRef[] = [{ path: backup.metadata, recursive: false }];
  const aliases: string[] = [];
  for (const suffix of ['.xva', '.xva.checksum']) {
    if (listing.top.get(backup.datetime + suffix)?.isFile === true)
      units.push({ path: backup.datetime + suffix, recursive: false });
  }
  for (const [vdiPath, entries] of listing.vdis) {
    const disk = entries.get(`${backup.datetime}.vhd`);
    if (disk !== undefined && (disk.isFile || disk.isDirectory))
      units.push({ path: `${vdiPath}/${disk.name}`, recursive: disk.isDirectory });
    const alias = entries.get(`${backup.datetime}.alias.vhd`);
    if (alias?.isFile === true) {
      units.push({ path: `${vdiPath}/${alias.name}`, recursive: false });
      aliases.push(`${vdiPath}/${alias.name}`);
    }
  }
  return { units, aliases };
}

// What an alias points to, relative to the VM folder; undefined when it would leave its VDI folder.
export function resolveAliasTarget(aliasPath: string, content: string): string | undefined {
  const target = content.trim();
  if (
    target === '' ||
    target.includes('\0') ||
    path.posix.isAbsolute(target) ||
    !target.endsWith('.vhd') ||
    path.posix.basename(target).startsWith('.')
  )
    return undefined;
  const vdiFolder = path.posix.dirname(aliasPath);
  const resolved = path.posix.normalize(path.posix.join(vdiFolder, target));
  return resolved.startsWith(`${vdiFolder}/`) ? resolved : undefined;
}

// XO's json names one xva, or one VHD per disk of the VM (XAPI allows a few hundred at most, docs/security.md);
// a json naming more than this is not one XO wrote, and only this many of its references are looked at.
export const MAX_REFERENCES_PER_JSON = 4096;

// The paths a readable metadata json says its run wrote (its xva and VHDs), relative to the VM folder: the first
// `limit` named, and how many it names in all (one pass over its keys: a json can name 300,000). Paths that would
// leave the VM folder are dropped: the json is written by the party we protect against.
export function readReferences(metadata: unknown): { references: string[]; named: number } {
  if (typeof metadata !== 'object' || metadata === null) return { references: [], named: 0 };
  const { xva, vhds } = metadata as { xva?: unknown; vhds?: unknown };
  const candidates: unknown[] = xva === undefined ? [] : [xva];
  let named = candidates.length;
  if (typeof vhds === 'object' && vhds !== null)
    for (const key in vhds) {
      if (!Object.hasOwn(vhds, key)) continue;
      if (named++ < MAX_REFERENCES_PER_JSON) candidates.push((vhds as Record<string, unknown>)[key]);
    }
  const references = new Set<string>();
  for (const candidate of candidates) {
    if (
      typeof candidate !== 'string' ||
      candidate === '' ||
      candidate.includes('\0') ||
      path.posix.isAbsolute(candidate)
    )
      continue;
    const normalized = path.posix.normalize(candidate);
    if (normalized === '.' || normalized.startsWith('../') || normalized === '..') continue;
    references.add(normalized);
  }
  return { references: [...references], named };
}

// Finds a referenced path in the listings already read, so a metadata reference costs no extra I/O. Only what XO
// puts there is accepted: an .xva at the top of the VM folder, a VHD or alias directly in a VDI folder, never a dot
// name. A json can name anything, and it is written by the party we protect against.
export function lookupListed(relativePath: string, listing: VmListing): ListedEntry | undefined {
  const slash = relativePath.lastIndexOf('/');
  const name = relativePath.slice(slash + 1);
  if (name.startsWith('.')) return undefined;
  if (slash === -1) {
    const entry = name.endsWith('.xva') ? listing.top.get(name) : undefined;
    return entry?.isFile === true ? entry : undefined;
  }
  if (!name.endsWith('.vhd')) return undefined;
  const entry = listing.vdis.get(relativePath.slice(0, slash))?.get(name);
  if (entry === undefined || (entry.isDirectory && name.endsWith('.alias.vhd'))) return undefined;
  return entry;
}

// A whole-file VHD (not an alias, not a temporary): XO opens these read-write even to read them.
export function isFlatVhdName(name: string): boolean {
  return name.endsWith('.vhd') && !isAliasName(name) && !name.startsWith('.');
}

export function isAliasName(name: string): boolean {
  return name.endsWith('.alias.vhd');
}

export interface Claim<B> {
  unit: UnitRef;
  backup: B;
}

// After a merge an older-named unit can hold newer data: the newest backup referencing a unit governs its window.
export function governingClaims<B extends { instant: number }>(claims: readonly Claim<B>[]): Claim<B>[] {
  const byPath = new Map<string, Claim<B>>();
  for (const claim of claims) {
    const current = byPath.get(claim.unit.path);
    if (current === undefined || claim.backup.instant > current.backup.instant) {
      byPath.set(claim.unit.path, {
        unit: { path: claim.unit.path, recursive: claim.unit.recursive || (current?.unit.recursive ?? false) },
        backup: claim.backup,
      });
    }
  }
  return [...byPath.values()];
}

// Pure: how much longer than the configured duration every window is held (1 %: 7 days -> 1 h 40 min 48 s). A backup
// that XO finished within it of its name's datetime is dated by its name (protect/arrival.ts windowStartOf): its
// window still ends no earlier than its arrival + the duration, and it needs no record by identity.
export function windowSlackMs(durationMs: number): number {
  return Math.floor(durationMs / 100);
}

// Pure: how long a window lasts from what it counts from: the configured duration + the slack. Everything that judges
// whether a window has ended uses it; only what shows the configured figure (immutability.json, status) uses the
// duration.
export function windowMsOf(durationMs: number): number {
  return durationMs + windowSlackMs(durationMs);
}

// A backup still inside its immutability window; one already older than the window is never locked. `windowMs`: the
// duration + its slack (windowMsOf).
export function isInWindow(instant: number, now: number, windowMs: number): boolean {
  return instant > now - windowMs;
}
