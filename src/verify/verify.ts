import { opendir } from 'node:fs/promises';
import path from 'node:path';
import type { AttributesAdapter } from '../attributes/adapter.js';
import type { IndexEntry } from '../index/entry.js';
import type { Identity } from '../remote/identity.js';
import { settleTimeFor } from '../protect/completion.js';
import type { LeafFolder } from '../protect/context.js';
import { reconcileFolder } from '../protect/reconcile.js';
import type { RemoteContext } from '../context/remote-context.js';
import { examine } from '../remote/read.js';
import { withHeldRemote } from '../remote/held.js';
import { findLeafFolders } from '../remote/scan.js';
import type { StoredEntry } from '../index/store.js';
import { surveyRestorePoints } from '../status/restore-survey.js';

export type FindingKind =
  | 'missing'
  | 'not-immutable'
  | 'changed'
  | 'device-changed'
  | 'pending'
  | 'unreadable-entry'
  // A directory unit holding more entries than verify lists: those past the cap were not checked.
  | 'unchecked'
  | 'unprotected'
  | 'refused'
  // A backup inside its window that XO could not restore after an attack: a unit of it or of its chain is missing,
  // unlocked, changed, or past its lock.
  | 'unrestorable';

export interface Finding {
  kind: FindingKind;
  path: string;
  detail: string;
}

export interface VerifyReport {
  remote: string;
  entriesChecked: number;
  foldersChecked: number;
  findings: Finding[];
}

const COMPARED: (keyof Identity)[] = ['ino', 'size', 'mtimeNs', 'ctimeNs', 'birthtimeNs'];

// Pure: how a unit differs from what its entry recorded at lock time. Any ctime change means it was lifted or altered.
export function compareIdentity(recorded: Identity, current: Identity): { changed: string[]; deviceChanged: boolean } {
  const changed = COMPARED.filter(
    (key) => recorded[key] !== undefined && recorded[key] !== '0' && recorded[key] !== current[key],
  ).map((key) => `${key} ${recorded[key]} -> ${current[key]}`);
  return { changed, deviceChanged: recorded.dev !== current.dev };
}

// Evidence for an auditor: every indexed unit exists, is immutable and unchanged since it was locked, and no completed
// backup inside its window lacks protection. Reads only.
export async function verifyRemote(
  remote: RemoteContext,
  attributes: AttributesAdapter,
  options: {
    now: number;
    jsonSettleMs: number;
    protectChains?: boolean;
    onProgress?: (done: number, total: number) => void;
    // Entries listed inside one directory unit; the default fits a full 2 TiB VHD directory.
    maxTreeEntries?: number;
  },
): Promise<VerifyReport> {
  const report: VerifyReport = { remote: remote.id, entriesChecked: 0, foldersChecked: 0, findings: [] };
  const stored: StoredEntry[] = [];
  const entries = await readEntries(remote, report, stored);
  const immutable = await attributes.isImmutable(remote, [...new Set(entries.map((e) => e.path))]);
  const inside = await listLockedTrees(entries, immutable, options.maxTreeEntries ?? MAX_TREE_ENTRIES, report);
  const insideImmutable = await attributes.isImmutable(remote, [...inside.values()].flat());
  const leaves = await findLeafFolders(remote.root);
  const total = entries.length + leaves.length;
  const newest = newestPerPath(entries);
  for (const entry of entries) {
    report.entriesChecked++;
    // A newer backup claimed the unit (a chain) and locked it again, which moved its ctime: its entry is the one.
    if (newest.get(entry.path) !== entry) continue;
    const finding =
      (await checkEntry(entry, immutable.get(entry.path))) ??
      looseInside(entry, inside.get(entry.path), insideImmutable);
    if (finding !== undefined) report.findings.push(finding);
    if (report.entriesChecked % 1000 === 0) options.onProgress?.(report.entriesChecked, total);
  }
  for (const leaf of leaves) {
    await checkFolder({ remote, ...leaf }, options, report);
    report.foldersChecked++;
    options.onProgress?.(report.entriesChecked + report.foldersChecked, total);
  }
  await checkRestorePoints(remote, stored, attributes, options.now, report);
  return report;
}

// Whole chains: a backup inside its window whose json, own units or chain units are not all locked and unchanged.
// A chain that cannot be read (encrypted remote) is no finding: it is locked on the safe side, and says so in status.
async function checkRestorePoints(
  remote: RemoteContext,
  stored: readonly StoredEntry[],
  attributes: AttributesAdapter,
  now: number,
  report: VerifyReport,
): Promise<void> {
  const points = await withHeldRemote(remote, (held) =>
    surveyRestorePoints(held, remote, stored, (paths) => attributes.isImmutable(remote, paths), now),
  );
  for (const vm of points.vms)
    for (const { backup, reason } of vm.unprotected)
      if (reason !== 'chain-unknown')
        report.findings.push({
          kind: 'unrestorable',
          path: path.join(remote.root, 'xo-vm-backups', vm.vm, backup),
          detail: `inside its window, but XO could not restore it after an attack: ${reason}`,
        });
}

function newestPerPath(entries: readonly IndexEntry[]): Map<string, IndexEntry> {
  const newest = new Map<string, IndexEntry>();
  for (const entry of entries) {
    const current = newest.get(entry.path);
    if (current === undefined || Date.parse(entry.backupDatetime) > Date.parse(current.backupDatetime))
      newest.set(entry.path, entry);
  }
  return newest;
}

// The readable entries; an unreadable one is a finding.
async function readEntries(remote: RemoteContext, report: VerifyReport, all: StoredEntry[]): Promise<IndexEntry[]> {
  const entries: IndexEntry[] = [];
  for (const day of await remote.index.listDays()) {
    for (const stored of await remote.index.readDay(day)) {
      all.push(stored);
      if (stored.entry === undefined)
        report.findings.push({
          kind: 'unreadable-entry',
          path: path.join(remote.index.folder, day, stored.name),
          detail: 'not an index entry this version reads',
        });
      else entries.push(stored.entry);
    }
  }
  return entries;
}

// A directory unit (VHD directory, config or pool date folder) is locked with everything in it: every file inside
// must still be immutable. Returns, per locked directory unit, the files inside.
async function listLockedTrees(
  entries: readonly IndexEntry[],
  immutable: ReadonlyMap<string, boolean | undefined>,
  cap: number,
  report: VerifyReport,
): Promise<Map<string, string[]>> {
  const inside = new Map<string, string[]>();
  for (const entry of entries) {
    if (!entry.recursive || immutable.get(entry.path) !== true) continue;
    const { paths, capped } = await listTree(entry.path, cap);
    inside.set(entry.path, paths);
    if (capped)
      report.findings.push({
        kind: 'unchecked',
        path: entry.path,
        detail: `it holds more than ${cap} entries, more than any backup XO writes: only the first ${cap} were checked`,
      });
  }
  return inside;
}

function looseInside(
  entry: IndexEntry,
  inside: readonly string[] | undefined,
  insideImmutable: ReadonlyMap<string, boolean | undefined>,
): Finding | undefined {
  const loose = (inside ?? []).filter((p) => insideImmutable.get(p) !== true);
  if (loose.length === 0) return undefined;
  return {
    kind: 'not-immutable',
    path: entry.path,
    detail: `${loose.length} file(s) inside are not immutable, such as ${loose[0]}`,
  };
}

// The daemon's own reconcile, run dry: whatever it would lock now is a completed backup left unprotected.
async function checkFolder(
  folder: LeafFolder,
  options: { now: number; jsonSettleMs: number; protectChains?: boolean },
  report: VerifyReport,
): Promise<void> {
  const reconciled = await reconcileFolder(folder, {
    now: options.now,
    jsonSettleMs: settleTimeFor(folder.remote.encrypted, options.jsonSettleMs),
    protectChains: options.protectChains,
  });
  for (const request of reconciled.requests) {
    if (!report.findings.some((f) => f.path === request.unit))
      report.findings.push({
        kind: 'unprotected',
        path: request.unit,
        detail: `part of completed backup ${request.backup.label}, inside its window, not locked as indexed`,
      });
  }
  // What the daemon refuses to lock (symlinks, hard links, folders behind links) is a gap too: named, never hidden.
  for (const refusal of reconciled.refusals)
    report.findings.push({ kind: 'refused', path: refusal.path, detail: `not locked: ${refusal.reason}` });
}

// A full 2 TiB VHD directory holds 1,048,576 blocks and their thousand folders; a directory an attacker filled holds
// what fits on the disk, which must not exhaust verify's memory.
const MAX_TREE_ENTRIES = 1_100_000;

// Up to `cap` entries inside a locked directory (links listed, not followed); `capped` when there were more.
async function listTree(dir: string, cap: number): Promise<{ paths: string[]; capped: boolean }> {
  const paths: string[] = [];
  try {
    for await (const entry of await opendir(dir, { recursive: true })) {
      if (paths.length === cap) return { paths, capped: true };
      paths.push(path.join(entry.parentPath ?? entry.path, entry.name));
    }
  } catch {
    // Unreadable or gone: its entry's own check says so.
  }
  return { paths, capped: false };
}

async function checkEntry(entry: IndexEntry, immutable: boolean | undefined): Promise<Finding | undefined> {
  const examined = await examine(entry.path);
  if (examined === undefined)
    return { kind: 'missing', path: entry.path, detail: `indexed for backup ${entry.backup}, but gone` };
  if (entry.state !== 'locked' || entry.identity === undefined)
    return {
      kind: 'pending',
      path: entry.path,
      detail: 'its lock was never confirmed (the daemon stopped between indexing and locking?)',
    };
  if (immutable !== true)
    return {
      kind: 'not-immutable',
      path: entry.path,
      detail: 'indexed as locked, but the immutable attribute is not set',
    };
  const { changed, deviceChanged } = compareIdentity(entry.identity, examined.identity);
  if (changed.length > 0)
    return {
      kind: 'changed',
      path: entry.path,
      detail: `changed since it was locked at ${entry.lockedAt ?? '?'}: ${changed.join(', ')}`,
    };
  if (deviceChanged)
    return {
      kind: 'device-changed',
      path: entry.path,
      detail:
        `device number ${entry.identity.dev} -> ${examined.identity.dev} (remounted or renumbered?); ` +
        'inode and times unchanged',
    };
  return undefined;
}
