import { unlink } from 'node:fs/promises';
import path from 'node:path';
import type { AttributesAdapter } from '../attributes/adapter.js';
import { isInside } from '../paths.js';
import { AppError } from '../errors.js';
import { dayOf, lockedEntry, pendingEntry } from '../index/entry.js';
import { IndexStore } from '../index/store.js';
import type { RemoteContext } from '../context/remote-context.js';
import { parseBackupDatetime } from '../remote/datetime.js';
import type { BackupKind } from '../remote/patterns.js';
import { examine, listFolder, listVdiFolders, readSmallFile } from '../remote/read.js';
import { isRealFolder } from '../remote/confine.js';
import { findLeafFolders } from '../remote/scan.js';
import { vmRebuildCandidates } from './candidates.js';

export interface RebuildReport {
  remote: string;
  // Immutable units that had no entry and now have one.
  indexed: { path: string; day: string }[];
  // Of those, the ones the prior art's index knew.
  imported: number;
  // Immutable units whose datetime cannot be told from their name or an alias: reported, never guessed.
  undated: string[];
  // Prior-art entries left alone: outside this remote, or naming nothing immutable any more.
  skippedLegacy: { path: string; reason: string }[];
  foldersScanned: number;
  // Folders not read: one on the way was a symbolic link.
  skippedFolders: { path: string; reason: string }[];
}

interface Candidate {
  path: string;
  kind: BackupKind;
  recursive: boolean;
  instant: number | undefined;
  backup: string;
}

// Walks the remote and gives every immutable unit without an entry one, so that the lift can find it again:
// after a lost or damaged index, or when switching over from the prior art (whose entries hold a bare path).
export async function rebuildIndex(
  remote: RemoteContext,
  attributes: AttributesAdapter,
  options: { importFrom: string[]; now: number; onProgress?: (done: number, total: number) => void },
): Promise<RebuildReport> {
  const report: RebuildReport = {
    remote: remote.id,
    indexed: [],
    imported: 0,
    undated: [],
    skippedLegacy: [],
    foldersScanned: 0,
    skippedFolders: [],
  };
  const { newest, ownLegacy } = await readIndexed(remote);
  const legacy = new Set<string>(ownLegacy.values());
  for (const folder of options.importFrom) for (const p of await readLegacyIndex(folder)) legacy.add(p);
  const candidates = await walkCandidates(remote, report, options.onProgress);
  await addLegacyCandidates(remote, legacy, candidates, report);
  const immutable = await attributes.isImmutable(remote, [...candidates.keys()]);
  const toWrite = selectToWrite(candidates, immutable, newest, legacy, report);
  const indexed = new Set<string>(newest.keys());
  for (const candidate of toWrite) {
    if (!(await writeEntry(remote, candidate, options.now))) continue;
    indexed.add(candidate.path);
    report.indexed.push({ path: candidate.path, day: dayOf(candidate.instant!) });
    if (legacy.has(candidate.path)) report.imported++;
  }
  report.indexed.sort((a, b) => a.path.localeCompare(b.path));
  // On disk before the prior art's entries they replace are removed.
  await remote.index.sync();
  await removeOwnLegacy(remote, ownLegacy, indexed);
  return report;
}

// The newest backup datetime each path is already indexed under (a newer one found on the remote still gets an
// entry), and the prior art's files in our own tree, with the path each names.
async function readIndexed(
  remote: RemoteContext,
): Promise<{ newest: Map<string, number>; ownLegacy: Map<string, string> }> {
  const newest = new Map<string, number>();
  const ownLegacy = new Map<string, string>();
  for (const day of await remote.index.listDays()) {
    for (const stored of await remote.index.readDay(day)) {
      const instant = stored.entry === undefined ? Number.NaN : Date.parse(stored.entry.backupDatetime);
      if (stored.entry !== undefined && !Number.isNaN(instant))
        newest.set(stored.entry.path, Math.max(instant, newest.get(stored.entry.path) ?? instant));
      else if (stored.entry === undefined && isLegacyText(stored.text))
        ownLegacy.set(path.join(remote.index.folder, day, stored.name), stored.text.trim());
    }
  }
  return { newest, ownLegacy };
}

async function walkCandidates(
  remote: RemoteContext,
  report: RebuildReport,
  onProgress: ((done: number, total: number) => void) | undefined,
): Promise<Map<string, Candidate>> {
  const candidates = new Map<string, Candidate>();
  const leaves = await findLeafFolders(remote.root);
  for (const leaf of leaves) {
    // A folder swapped for a link while read: nothing read through it; the rest of the remote is still indexed.
    const found = await leafCandidates(leaf.kind, leaf.path).catch((error: unknown) => {
      if (!(error instanceof AppError && error.code === 'REMOTE_LINK_ON_PATH')) throw error;
      report.skippedFolders.push({ path: leaf.path, reason: error.message });
      return [];
    });
    for (const candidate of found) candidates.set(candidate.path, candidate);
    report.foldersScanned++;
    onProgress?.(report.foldersScanned, leaves.length);
  }
  return candidates;
}

// The prior art locked files the walk does not look for (those inside config and pool date folders): each is a unit.
async function addLegacyCandidates(
  remote: RemoteContext,
  legacy: ReadonlySet<string>,
  candidates: Map<string, Candidate>,
  report: RebuildReport,
): Promise<void> {
  for (const p of legacy) {
    if (candidates.has(p)) continue;
    const candidate = await legacyCandidate(remote, p);
    if (candidate === undefined)
      report.skippedLegacy.push({
        path: p,
        reason: isInside(p, remote.root)
          ? 'not a file or folder of a backup of this remote'
          : `not inside ${remote.root}`,
      });
    else candidates.set(p, candidate);
  }
}

// Pure: the immutable, dated candidates with no entry as new as theirs; the rest is reported where it matters.
function selectToWrite(
  candidates: ReadonlyMap<string, Candidate>,
  immutable: ReadonlyMap<string, boolean | undefined>,
  newest: ReadonlyMap<string, number>,
  legacy: ReadonlySet<string>,
  report: RebuildReport,
): Candidate[] {
  const toWrite: Candidate[] = [];
  for (const candidate of candidates.values()) {
    if (immutable.get(candidate.path) !== true) {
      if (legacy.has(candidate.path))
        report.skippedLegacy.push({ path: candidate.path, reason: 'not immutable any more' });
      continue;
    }
    const known = newest.get(candidate.path);
    if (candidate.instant === undefined) {
      if (known === undefined) report.undated.push(candidate.path);
      continue;
    }
    if (known === undefined || known < candidate.instant) toWrite.push(candidate);
  }
  return toWrite;
}

// Writes a locked entry for a dated candidate; false when it is gone or no longer a file or folder.
async function writeEntry(remote: RemoteContext, candidate: Candidate, now: number): Promise<boolean> {
  const examined = await examine(candidate.path);
  if (examined === undefined || examined.type === 'symlink' || examined.type === 'other') return false;
  const request = {
    remote: remote.id,
    path: candidate.path,
    kind: candidate.kind,
    recursive: candidate.recursive,
    backup: candidate.backup,
    backupInstant: candidate.instant!,
  };
  await remote.index.write(lockedEntry(pendingEntry(request, now), examined.identity, now));
  return true;
}

// The prior art's files in our own tree go once what they name has an entry of ours.
async function removeOwnLegacy(
  remote: RemoteContext,
  ownLegacy: ReadonlyMap<string, string>,
  indexed: ReadonlySet<string>,
): Promise<void> {
  for (const [file, named] of ownLegacy) {
    if (!indexed.has(named)) continue;
    await unlink(file).catch(() => undefined);
    await remote.index.removeDayIfEmpty(path.basename(path.dirname(file)));
  }
}

// A path from the prior art's index, as a unit: inside a backup tree of this remote, no symlink on the way, dated by
// the nearest datetime in its path (its own name, or its date folder's).
async function legacyCandidate(remote: RemoteContext, unit: string): Promise<Candidate | undefined> {
  if (!path.isAbsolute(unit) || !isInside(unit, remote.root)) return undefined;
  const segments = path.relative(remote.root, unit).split(path.sep);
  const kind = ({ 'xo-vm-backups': 'vm', 'xo-config-backups': 'config', 'xo-pool-metadata-backups': 'pool' } as const)[
    segments[0] ?? ''
  ];
  if (kind === undefined || segments.length < 2 || (await isRealFolder(remote, path.dirname(unit))) !== true)
    return undefined;
  const examined = await examine(unit);
  if (examined === undefined || (examined.type !== 'file' && examined.type !== 'directory')) return undefined;
  const dated = [...segments]
    .reverse()
    .map((segment) => parseBackupDatetime(segment))
    .find((instant) => instant !== undefined);
  return { path: unit, kind, recursive: examined.type === 'directory', instant: dated, backup: unit };
}

async function leafCandidates(kind: BackupKind, folder: string): Promise<Candidate[]> {
  if (kind !== 'vm') {
    return [
      { path: folder, kind, recursive: true, instant: parseBackupDatetime(path.basename(folder)), backup: folder },
    ];
  }
  const entries = await listFolder(folder);
  const vdis = await listVdiFolders(folder);
  const dataFolders = new Map<string, Awaited<ReturnType<typeof listFolder>>>();
  const aliases = new Map<string, string>();
  for (const vdi of vdis) {
    if (vdi.entries.some((e) => e.name === 'data' && e.isDirectory))
      dataFolders.set(vdi.path, await listFolder(path.join(folder, vdi.path, 'data')));
    for (const entry of vdi.entries) {
      if (!entry.isFile || !entry.name.endsWith('.alias.vhd')) continue;
      const content = await readSmallFile(path.join(folder, vdi.path, entry.name));
      if (content !== undefined) aliases.set(`${vdi.path}/${entry.name}`, content);
    }
  }
  const names = new Set(entries.map((e) => e.name));
  return vmRebuildCandidates(entries, vdis, dataFolders, aliases).map((c) => {
    const datetime = /^(\d{8}T\d{6}Z?)/.exec(path.posix.basename(c.path))?.[1];
    const json =
      datetime !== undefined && names.has(`${datetime}.json`)
        ? path.join(folder, `${datetime}.json`)
        : path.join(folder, c.path);
    return { path: path.join(folder, c.path), kind, recursive: c.isDirectory, instant: c.instant, backup: json };
  });
}

// The prior art's index: <day>/<sha256(path)> files holding the bare absolute path, in the same layout as ours.
async function readLegacyIndex(folder: string): Promise<string[]> {
  const store = new IndexStore(path.dirname(folder), path.basename(folder));
  const paths: string[] = [];
  for (const day of await store.listDays()) {
    for (const stored of await store.readDay(day))
      if (stored.entry === undefined && isLegacyText(stored.text)) paths.push(stored.text.trim());
  }
  return paths;
}

function isLegacyText(text: string): boolean {
  const trimmed = text.trim();
  return path.isAbsolute(trimmed) && !trimmed.includes('\n') && !trimmed.startsWith('{');
}
