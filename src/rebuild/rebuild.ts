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
import { yieldIfDue } from '../concurrency.js';
import { withHeldRemote, type HeldRemote } from '../remote/held.js';
import { examine, examineOrLink, listFolder, listVdiFolders, readSmallFile, relativeIn } from '../remote/read.js';
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
  const indexed = new Set<string>(newest.keys());
  await withHeldRemote(remote, async (held) => {
    const candidates = await walkCandidates(held, report, options.onProgress);
    addLegacyCandidates(held, legacy, candidates, report);
    const immutable = await attributes.isImmutable(remote, [...candidates.keys()]);
    for (const candidate of selectToWrite(candidates, immutable, newest, legacy, report)) {
      if (!(await writeEntry(held, remote, candidate, options.now))) continue;
      indexed.add(candidate.path);
      report.indexed.push({ path: candidate.path, day: dayOf(candidate.instant!) });
      if (legacy.has(candidate.path)) report.imported++;
    }
  });
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
  held: HeldRemote,
  report: RebuildReport,
  onProgress: ((done: number, total: number) => void) | undefined,
): Promise<Map<string, Candidate>> {
  const candidates = new Map<string, Candidate>();
  const leaves = await findLeafFolders(held);
  for (const leaf of leaves) {
    await yieldIfDue();
    let found: Candidate[] = [];
    try {
      found = leafCandidates(held, leaf.kind, leaf.path);
    } catch (error) {
      // A folder swapped for a link while read: nothing read through it; the rest of the remote is still indexed.
      if (!(error instanceof AppError && error.code === 'REMOTE_LINK_ON_PATH')) throw error;
      report.skippedFolders.push({ path: leaf.path, reason: error.message });
    }
    for (const candidate of found) candidates.set(candidate.path, candidate);
    report.foldersScanned++;
    onProgress?.(report.foldersScanned, leaves.length);
  }
  return candidates;
}

// The prior art locked files the walk does not look for (those inside config and pool date folders): each is a unit.
function addLegacyCandidates(
  held: HeldRemote,
  legacy: ReadonlySet<string>,
  candidates: Map<string, Candidate>,
  report: RebuildReport,
): void {
  for (const p of legacy) {
    if (candidates.has(p)) continue;
    const candidate = legacyCandidate(held, p);
    if (candidate === undefined)
      report.skippedLegacy.push({
        path: p,
        reason: isInside(p, held.root) ? 'not a file or folder of a backup of this remote' : `not inside ${held.root}`,
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
async function writeEntry(
  held: HeldRemote,
  remote: RemoteContext,
  candidate: Candidate,
  now: number,
): Promise<boolean> {
  const examined = examine(held, relativeIn(held, candidate.path));
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

// A path from the prior art's index, as a unit: inside a backup tree of this remote, written plainly, dated by the
// nearest datetime in its path (its own name, or its date folder's). Examined through the held remote: one with a
// symbolic link on the way is no unit.
function legacyCandidate(held: HeldRemote, unit: string): Candidate | undefined {
  if (!path.isAbsolute(unit) || !isInside(unit, held.root)) return undefined;
  const relative = path.relative(held.root, unit);
  const segments = relative.split(path.sep);
  const kind = ({ 'xo-vm-backups': 'vm', 'xo-config-backups': 'config', 'xo-pool-metadata-backups': 'pool' } as const)[
    segments[0] ?? ''
  ];
  if (kind === undefined || segments.length < 2 || path.join(held.root, relative) !== unit) return undefined;
  const examined = examineOrLink(held, relative);
  if (examined === undefined || examined instanceof AppError) return undefined;
  if (examined.type !== 'file' && examined.type !== 'directory') return undefined;
  const dated = [...segments]
    .reverse()
    .map((segment) => parseBackupDatetime(segment))
    .find((instant) => instant !== undefined);
  return { path: unit, kind, recursive: examined.type === 'directory', instant: dated, backup: unit };
}

function leafCandidates(held: HeldRemote, kind: BackupKind, folder: string): Candidate[] {
  if (kind !== 'vm') {
    return [
      { path: folder, kind, recursive: true, instant: parseBackupDatetime(path.basename(folder)), backup: folder },
    ];
  }
  const relative = relativeIn(held, folder);
  const entries = listFolder(held, relative);
  const vdis = listVdiFolders(held, relative);
  const dataFolders = new Map<string, ReturnType<typeof listFolder>>();
  const aliases = new Map<string, string>();
  for (const vdi of vdis) {
    if (vdi.entries.some((e) => e.name === 'data' && e.isDirectory))
      dataFolders.set(vdi.path, listFolder(held, `${relative}/${vdi.path}/data`));
    for (const entry of vdi.entries) {
      if (!entry.isFile || !entry.name.endsWith('.alias.vhd')) continue;
      const content = readSmallFile(held, `${relative}/${vdi.path}/${entry.name}`);
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
