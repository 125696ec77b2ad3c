import path from 'node:path';
import type { AttributesAdapter } from '../attributes/adapter.js';
import type { RemoteContext } from '../context/remote-context.js';
import { unlockingEntry } from '../index/entry.js';
import type { StoredEntry } from '../index/store.js';
import { readVmSnapshot } from '../backup/snapshot.js';
import { neededBy } from '../backup/vm.js';
import { isInside } from '../paths.js';
import { isRealFolder } from '../remote/confine.js';
import type { Identity } from '../remote/identity.js';
import { unlessLinked, withHeldRemote, type HeldRemote } from '../remote/held.js';
import { findVmBackups, isInWindow } from '../remote/model.js';
import { emptyReport, type LiftReport } from './report.js';
import { unlockChunk } from './chunk.js';
import { groupByPath } from '../index/units.js';
import type { LiftCandidate } from './plan.js';

const CHUNK = 4096;
const DAY_MS = 86_400_000;

export interface VmLiftOptions {
  vm: string;
  // Only this backup (its instant) and what it needs: its own units and its disks' whole VHD chains.
  backupInstant?: number;
  now: number;
  dryRun: boolean;
  onProgress?: (done: number, total: number) => void;
}

export interface VmLiftReport extends LiftReport {
  vm: string;
  folder: string;
  // Paths of the VM's units found still immutable after the lift (not in the index, or locked again): listed, never
  // guessed at.
  stillImmutable: string[];
}

// A repair lift (hold start): unlocks the indexed units of one VM, or of one backup and its chain, whatever their
// window. Entries and identity windows are kept, so that once the hold ends the daemon locks the same units again
// for the windows they had. The identity checks of every lift apply: a unit found swapped, or locked under another
// VM's folder and moved in, is not unlocked.
export async function liftVm(
  remote: RemoteContext,
  attributes: AttributesAdapter,
  options: VmLiftOptions,
): Promise<VmLiftReport> {
  const folder = path.join(remote.root, 'xo-vm-backups', options.vm);
  const report: VmLiftReport = {
    ...emptyReport(remote.id, options.dryRun),
    vm: options.vm,
    folder,
    stillImmutable: [],
  };
  const real = await isRealFolder(remote, folder);
  if (real !== true) {
    report.failed.push({
      path: folder,
      message: real === false ? 'a folder on its path is a symbolic link' : 'the VM has no folder on this remote',
    });
    return report;
  }
  const paths = await withHeldRemote(remote, async (held) =>
    options.backupInstant === undefined
      ? unitPathsOf(held, options.vm)
      : unitsNeededBy(held, options.vm, options.backupInstant, remote.encrypted),
  );
  if (paths === undefined) {
    report.failed.push({ path: folder, message: 'no backup of the VM has that datetime' });
    return report;
  }
  const stored = await entriesFor(remote, paths);
  const { units: named, unreadable } = groupByPath(stored);
  report.unreadableEntries.push(...unreadable.map((u) => path.join(remote.index.folder, u.day, u.name)));
  const elsewhere = await lockedElsewhere(remote, folder, named, options.now);
  for (const [unit, reason] of elsewhere) report.suspicious.push({ path: unit, reason });
  const units = named.filter((u) => !elsewhere.has(u.path)).sort((a, b) => a.path.localeCompare(b.path));
  const checks = { now: options.now, all: false, repairOf: folder, dryRun: options.dryRun };
  if (!options.dryRun) await markUnlocking(remote, stored, new Set(units.map((u) => u.path)));
  for (let start = 0; start < units.length; start += CHUNK) {
    const chunk = units.slice(start, start + CHUNK);
    await unlockChunk(remote, attributes, chunk, checks, report, async () => {});
    options.onProgress?.(Math.min(start + CHUNK, units.length), units.length);
  }
  report.kept = 0;
  if (options.dryRun) return report;
  const refused = new Set(report.suspicious.map((s) => s.path));
  for (const [unit, immutable] of await attributes.isImmutable(remote, paths))
    if (immutable === true && !refused.has(unit)) report.stillImmutable.push(unit);
  return report;
}

// Before any flag is cleared, and durably: a lift that stops part-way (killed, a crash) leaves a directory's top locked
// and its ctime unchanged above what it cleared, and the entry would still say locked. "unlocking" makes every
// reconcile lock such a unit again through the flag helper, and status count it unlocked, once the hold ends.
async function markUnlocking(
  remote: RemoteContext,
  stored: readonly StoredEntry[],
  units: ReadonlySet<string>,
): Promise<void> {
  const locked = stored.flatMap(({ entry }) => (entry?.state === 'locked' && units.has(entry.path) ? [entry] : []));
  for (const entry of locked) await remote.index.write(unlockingEntry(entry));
  await remote.index.sync();
}

// A unit of another VM moved into this folder and claimed here keeps the window it was locked for there: the entries
// still inside their window are searched for the same unit (inode and birth time) under a path outside this folder.
// Reads every such entry once: a repair lift is rare, and an index cannot be searched by identity otherwise.
async function lockedElsewhere(
  remote: RemoteContext,
  folder: string,
  units: readonly LiftCandidate[],
  now: number,
): Promise<Map<string, string>> {
  const wanted = new Map<string, string>();
  for (const unit of units) if (unit.identity !== undefined) wanted.set(identityKey(unit.identity), unit.path);
  const found = new Map<string, string>();
  if (wanted.size === 0) return found;
  const live = (await remote.index.listDays()).filter(
    (day) => Date.parse(`${day}T00:00:00.000Z`) + DAY_MS > now - remote.windowMs,
  );
  for (const day of live)
    for await (const names of remote.index.streamNames(day))
      for (const { entry } of await remote.index.readEntries(day, names)) {
        const unit = entry?.identity === undefined ? undefined : wanted.get(identityKey(entry.identity));
        const instant = entry === undefined ? Number.NaN : Date.parse(entry.backupDatetime);
        if (unit === undefined || isInside(entry!.path, folder) || !isInWindow(instant, now, remote.windowMs)) continue;
        const until = new Date(instant + remote.windowMs).toISOString();
        found.set(
          unit,
          `it is the unit locked at ${entry!.path} until ${until} (moved in from outside this VM's folder?): ` +
            'it keeps that window',
        );
      }
  return found;
}

// Inode and birth time: the device number can change across reboots.
function identityKey(identity: Identity): string {
  return `${identity.ino}:${identity.birthtimeNs ?? '0'}`;
}

// Every place a unit of the VM can be: the files of its folder, of each VDI folder, and of each data/ folder. A folder
// swapped for a link since is not entered. Absolute paths.
function unitPathsOf(held: HeldRemote, vm: string): string[] {
  const list = (relative: string): { name: string; isDirectory: boolean; isFile: boolean }[] =>
    unlessLinked(() => held.list(`xo-vm-backups/${vm}${relative}`)) ?? [];
  const at = (relative: string): string => path.join(held.root, 'xo-vm-backups', vm, relative);
  const paths = list('').flatMap((e) => (e.isFile ? [at(e.name)] : []));
  const folders = (relative: string): string[] =>
    list(relative).flatMap((e) => (e.isDirectory && !e.name.startsWith('.') ? [`${relative}/${e.name}`] : []));
  for (const vdi of folders('/vdis').flatMap(folders)) {
    const entries = list(vdi);
    paths.push(...entries.map((e) => at(`${vdi}/${e.name}`)));
    if (entries.some((e) => e.isDirectory && e.name === 'data'))
      paths.push(...list(`${vdi}/data`).map((e) => at(`${vdi}/data/${e.name}`)));
  }
  return paths;
}

// What restoring one backup, or repairing it by hand, needs (lift --vm --backup), asked of the backup model whatever
// protectChains says and whether or not it is still inside its window. Absolute paths; undefined when the folder
// holds no backup at that instant.
async function unitsNeededBy(
  held: HeldRemote,
  vm: string,
  instant: number,
  encrypted: boolean,
): Promise<string[] | undefined> {
  const snapshot = await readVmSnapshot(held, vm, encrypted, {
    select: async (jsons) => new Set([...jsons.keys()].filter((name) => isBackupAt(name, instant))),
  });
  const backup = findVmBackups(snapshot.entries.filter((e) => e.isFile).map((e) => e.name)).find(
    (b) => b.instant === instant,
  );
  if (backup === undefined) return undefined;
  const at = (relative: string): string => path.join(held.root, snapshot.folder, relative);
  return [...new Set(neededBy(snapshot, backup).map((unit) => at(unit.path)))];
}

function isBackupAt(json: string, instant: number): boolean {
  return findVmBackups([json]).some((b) => b.instant === instant);
}

// The entries naming these paths, in every day bucket (names are hashes of paths: one stat per path and bucket).
async function entriesFor(remote: RemoteContext, paths: readonly string[]): Promise<StoredEntry[]> {
  const stored: StoredEntry[] = [];
  for (const day of await remote.index.listDays()) {
    const names = paths.map((p) => path.basename(remote.index.entryPath(day, p)));
    stored.push(...(await remote.index.readEntries(day, names)));
  }
  const wanted = new Set(paths);
  return stored.filter((s) => s.entry === undefined || wanted.has(s.entry.path));
}
