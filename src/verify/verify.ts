import path from 'node:path';
import type { AttributesAdapter } from '../attributes/adapter.js';
import type { IndexEntry } from '../index/entry.js';
import type { Identity } from '../remote/identity.js';
import { settleTimeFor } from '../backup/completion.js';
import type { LeafFolder } from '../protect/context.js';
import { reconcileFolder } from '../protect/reconcile.js';
import type { RemoteContext } from '../context/remote-context.js';
import { examineIn, type Examined } from '../remote/read.js';
import { NotAFolder, withHeldRemote, type HeldRemote } from '../remote/held.js';
import { yieldIfDue } from '../concurrency.js';
import { errnoCode } from '../errors.js';
import { findLeafFolders } from '../remote/scan.js';
import type { StoredEntry } from '../index/store.js';
import { surveyRestorePoints } from '../status/restore-survey.js';
import { lockedAnyway } from './locked-anyway.js';

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
  | 'unrestorable'
  // Locked, but not as XO writes it (what XO never writes inside, a second name): lift leaves it for an admin.
  | 'locked-anyway';

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
  await withHeldRemote(remote, async (held) => {
    const cap = options.maxTreeEntries ?? MAX_TREE_ENTRIES;
    const inside = await listLockedTrees(held, entries, immutable, cap, report);
    const insideImmutable = await attributes.isImmutable(remote, [...inside.values()].flat());
    const leaves = await findLeafFolders(held);
    const total = entries.length + leaves.length;
    const newest = newestPerPath(entries);
    for (const entry of entries) {
      report.entriesChecked++;
      // A newer backup claimed the unit (a chain) and locked it again, which moved its ctime: its entry is the one.
      if (newest.get(entry.path) !== entry) continue;
      await yieldIfDue();
      const finding =
        checkEntry(held, entry, immutable.get(entry.path)) ??
        looseInside(entry, inside.get(entry.path), insideImmutable);
      if (finding !== undefined) report.findings.push(finding);
      if (report.entriesChecked % 1000 === 0) options.onProgress?.(report.entriesChecked, total);
    }
    const named = new Set(report.findings.map((f) => f.path));
    const sound = entries.filter((e) => newest.get(e.path) === e && !named.has(e.path));
    for (const [unit, detail] of await lockedAnyway(remote, attributes, sound))
      report.findings.push({ kind: 'locked-anyway', path: unit, detail });
    for (const leaf of leaves) {
      await checkFolder({ remote, ...leaf }, { ...options, flags: attributes }, report);
      report.foldersChecked++;
      options.onProgress?.(report.entriesChecked + report.foldersChecked, total);
    }
    await checkRestorePoints(held, remote, stored, attributes, options.now, report);
  });
  return report;
}

// Whole chains: a backup inside its window whose json, own units or chain units are not all locked and unchanged.
// A chain that cannot be read (encrypted remote) is no finding: it is locked on the safe side, and says so in status.
async function checkRestorePoints(
  held: HeldRemote,
  remote: RemoteContext,
  stored: readonly StoredEntry[],
  attributes: AttributesAdapter,
  now: number,
  report: VerifyReport,
): Promise<void> {
  const points = await surveyRestorePoints(held, remote, stored, (paths) => attributes.isImmutable(remote, paths), now);
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
  held: HeldRemote,
  entries: readonly IndexEntry[],
  immutable: ReadonlyMap<string, boolean | undefined>,
  cap: number,
  report: VerifyReport,
): Promise<Map<string, string[]>> {
  const inside = new Map<string, string[]>();
  for (const entry of entries) {
    if (!entry.recursive || immutable.get(entry.path) !== true) continue;
    await yieldIfDue();
    const { paths, capped } = listTree(held, entry.path, cap);
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
  options: { now: number; jsonSettleMs: number; protectChains?: boolean; flags: AttributesAdapter },
  report: VerifyReport,
): Promise<void> {
  const reconciled = await reconcileFolder(folder, {
    now: options.now,
    jsonSettleMs: settleTimeFor(folder.remote.encrypted, options.jsonSettleMs),
    protectChains: options.protectChains,
    // Not a full proof: only the flags of directories that look orphaned are read, as the daemon does.
    flags: options.flags,
    // verify changes nothing: a link where XO writes a folder is a finding (refused), the daemon settles it.
    settle: false,
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
const MAX_TREE_DEPTH = 16;

// Up to `cap` entries inside a locked directory, through the held remote (a link is listed, never entered);
// `capped` when there were more.
function listTree(held: HeldRemote, dir: string, cap: number): { paths: string[]; capped: boolean } {
  const paths: string[] = [];
  const top = held.relativeOf(dir);
  // Deeper than any folder XO writes (blocks/<n>/<m>): counted as past the cap, not walked.
  const walk = (relative: string, depth: number): boolean => {
    if (depth > MAX_TREE_DEPTH) return true;
    for (const child of held.list(relative)) {
      if (paths.length === cap) return true;
      paths.push(path.join(held.root, relative, child.name));
      if (child.isDirectory && walk(`${relative}/${child.name}`, depth + 1)) return true;
    }
    return false;
  };
  try {
    return { capped: top !== undefined && walk(top, 0), paths };
  } catch (error) {
    // Unreadable, gone, or behind a link swapped in: its entry's own check says so.
    if (error instanceof NotAFolder || errnoCode(error) !== undefined) return { paths, capped: false };
    throw error;
  }
}

function checkEntry(held: HeldRemote, entry: IndexEntry, immutable: boolean | undefined): Finding | undefined {
  const found = (kind: FindingKind, detail: string): Finding => ({ kind, path: entry.path, detail });
  const relative = held.relativeOf(entry.path);
  let examined: Examined | undefined;
  try {
    examined = relative === undefined ? undefined : examineIn(held, relative);
  } catch (error) {
    if (!(error instanceof NotAFolder)) throw error;
    return found('missing', `not reached: the folder ${error.path} is ${error.reason}`);
  }
  if (examined === undefined) return found('missing', `indexed for backup ${entry.backup}, but gone`);
  if (entry.state !== 'locked' || entry.identity === undefined)
    return found(
      'pending',
      entry.state === 'unlocking'
        ? 'a repair lift (hold start) unlocked it; the daemon locks it again once the hold ends'
        : immutable === true
          ? 'locked, but its lock failed inside it (a link that could not be followed?): the journal says what; ' +
            'the daemon tries it again'
          : 'its lock was never confirmed (the daemon stopped between indexing and locking?)',
    );
  if (immutable !== true) return found('not-immutable', 'indexed as locked, but the immutable attribute is not set');
  const { changed, deviceChanged } = compareIdentity(entry.identity, examined.identity);
  if (changed.length > 0)
    return found('changed', `changed since it was locked at ${entry.lockedAt ?? '?'}: ${changed.join(', ')}`);
  if (!deviceChanged) return undefined;
  return found(
    'device-changed',
    `device number ${entry.identity.dev} -> ${examined.identity.dev} (remounted or renumbered?); ` +
      'inode and times unchanged',
  );
}
