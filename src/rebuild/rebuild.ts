import { readdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { AttributesAdapter } from '../attributes/adapter.js';
import { isInside } from '../config/validate.js';
import { errnoCode } from '../errors.js';
import { dayOf, lockedEntry, pendingEntry } from '../index/entry.js';
import type { RemoteContext } from '../remote/context.js';
import { parseBackupDatetime } from '../remote/datetime.js';
import type { BackupKind } from '../remote/patterns.js';
import { examine, listFolder, listVdiFolders, readSmallFile } from '../remote/read.js';
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
}

interface Candidate {
  path: string;
  kind: BackupKind;
  recursive: boolean;
  instant: number | undefined;
  backup: string;
}

const DAY_NAME = /^\d{4}-\d{2}-\d{2}$/;
const ENTRY_NAME = /^[0-9a-f]{64}$/;

// Walks the remote and gives every immutable unit without an entry one, so that the lift can find it again:
// after a lost or damaged index, or when switching over from the prior art (whose entries hold a bare path).
export async function rebuildIndex(remote: RemoteContext, attributes: AttributesAdapter, options: { importFrom: string[]; now: number; onProgress?: (done: number, total: number) => void }): Promise<RebuildReport> {
  const report: RebuildReport = { remote: remote.id, indexed: [], imported: 0, undated: [], skippedLegacy: [], foldersScanned: 0 };
  const known = new Set<string>();
  const ownLegacy: string[] = [];
  for (const day of await remote.index.listDays()) {
    for (const stored of await remote.index.readDay(day)) {
      if (stored.entry !== undefined) known.add(stored.entry.path);
      else if (isLegacyText(stored.text)) ownLegacy.push(path.join(remote.index.folder, day, stored.name));
    }
  }
  const legacy = new Set<string>();
  for (const file of ownLegacy) legacy.add(((await readSmallFile(file)) ?? '').trim());
  for (const folder of options.importFrom) for (const p of await readLegacyIndex(folder)) legacy.add(p);

  const candidates: Candidate[] = [];
  const leaves = await findLeafFolders(remote.root);
  for (const leaf of leaves) {
    candidates.push(...(await leafCandidates(leaf.kind, leaf.path)));
    report.foldersScanned++;
    options.onProgress?.(report.foldersScanned, leaves.length);
  }
  const immutable = await attributes.isImmutable(candidates.map((c) => c.path));
  const found = new Set<string>();
  for (const candidate of candidates) {
    if (immutable.get(candidate.path) !== true) continue;
    found.add(candidate.path);
    if (known.has(candidate.path)) continue;
    if (candidate.instant === undefined) {
      report.undated.push(candidate.path);
      continue;
    }
    const examined = await examine(candidate.path);
    if (examined === undefined || examined.type === 'symlink' || examined.type === 'other') continue;
    const request = { remote: remote.id, path: candidate.path, kind: candidate.kind, recursive: candidate.recursive, backup: candidate.backup, backupInstant: candidate.instant };
    await remote.index.write(lockedEntry(pendingEntry(request, options.now), examined.identity, options.now));
    report.indexed.push({ path: candidate.path, day: dayOf(candidate.instant) });
    if (legacy.has(candidate.path)) report.imported++;
  }
  for (const p of legacy) {
    if (found.has(p)) continue;
    report.skippedLegacy.push({ path: p, reason: isInside(p, remote.root) ? 'not an immutable backup unit of this remote any more' : `not inside ${remote.root}` });
  }
  // The prior art's files in our own tree are replaced by the entries just written.
  for (const file of ownLegacy) await unlink(file).catch(() => undefined);
  return report;
}

async function leafCandidates(kind: BackupKind, folder: string): Promise<Candidate[]> {
  if (kind !== 'vm') {
    return [{ path: folder, kind, recursive: true, instant: parseBackupDatetime(path.basename(folder)), backup: folder }];
  }
  const entries = await listFolder(folder);
  const vdis = await listVdiFolders(folder);
  const dataFolders = new Map<string, Awaited<ReturnType<typeof listFolder>>>();
  const aliases = new Map<string, string>();
  for (const vdi of vdis) {
    if (vdi.entries.some((e) => e.name === 'data' && e.isDirectory)) dataFolders.set(vdi.path, await listFolder(path.join(folder, vdi.path, 'data')));
    for (const entry of vdi.entries) {
      if (!entry.isFile || !entry.name.endsWith('.alias.vhd')) continue;
      const content = await readSmallFile(path.join(folder, vdi.path, entry.name));
      if (content !== undefined) aliases.set(`${vdi.path}/${entry.name}`, content);
    }
  }
  const names = new Set(entries.map((e) => e.name));
  return vmRebuildCandidates(entries, vdis, dataFolders, aliases).map((c) => {
    const datetime = /^(\d{8}T\d{6}Z?)/.exec(path.posix.basename(c.path))?.[1];
    const json = datetime !== undefined && names.has(`${datetime}.json`) ? path.join(folder, `${datetime}.json`) : path.join(folder, c.path);
    return { path: path.join(folder, c.path), kind, recursive: c.isDirectory, instant: c.instant, backup: json };
  });
}

// The prior art's index: <day>/<sha256(path)> files holding the bare absolute path.
async function readLegacyIndex(folder: string): Promise<string[]> {
  const paths: string[] = [];
  let days: string[];
  try {
    days = (await readdir(folder)).filter((d) => DAY_NAME.test(d));
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return [];
    throw error;
  }
  for (const day of days) {
    let names: string[];
    try {
      names = (await readdir(path.join(folder, day))).filter((n) => ENTRY_NAME.test(n));
    } catch {
      continue;
    }
    for (const name of names) {
      const text = (await readSmallFile(path.join(folder, day, name), 4096)) ?? '';
      if (isLegacyText(text)) paths.push(text.trim());
    }
  }
  return paths;
}

function isLegacyText(text: string): boolean {
  const trimmed = text.trim();
  return path.isAbsolute(trimmed) && !trimmed.includes('\n') && !trimmed.startsWith('{');
}
