import path from 'node:path';
import { dayOf, isUnchangedSinceLock, type IndexEntry } from '../index/entry.js';
import { parseBackupDatetime } from '../remote/datetime.js';
import type { Identity } from '../remote/identity.js';
import type { Examined } from '../remote/read.js';
import { bornOf, isNamedInTheFuture, mayBeInWindow, windowStartOf, type WindowStartOf } from './arrival.js';
import type { BackupRef, LeafFolder, LockRequest, Refusal } from './context.js';

// Where a reconcile reads index entries: the remote's index, or the reads of one reconcile (EntryReads).
export interface EntryReader {
  read(day: string, unitPath: string): Promise<IndexEntry | undefined>;
}

// The index entries one folder's reconcile reads, each once: a json is asked about by its window, by whether it is
// locked, and as a claim. Nothing of the folder is written meanwhile (its lock comes after its reconcile, and the
// scheduler never reconciles a folder while its lock is in flight).
export class EntryReads implements EntryReader {
  readonly #read = new Map<string, Promise<IndexEntry | undefined>>();

  constructor(readonly index: EntryReader) {}

  read(day: string, unitPath: string): Promise<IndexEntry | undefined> {
    const key = `${day}/${unitPath}`;
    let read = this.#read.get(key);
    if (read === undefined) this.#read.set(key, (read = this.index.read(day, unitPath)));
    return read;
  }
}

// Locked by us and untouched since: its entry in the governing backup's day records this very inode and ctime, for
// that backup or a newer one (an older backup of the same day would end its window early).
export async function isLockedAsIndexed(
  index: EntryReader,
  backupInstant: number,
  unit: string,
  examined: Examined,
): Promise<boolean> {
  const entry = await index.read(dayOf(backupInstant), unit);
  return isUnchangedSinceLock(entry, examined.identity) && Date.parse(entry!.backupDatetime) >= backupInstant;
}

// Locked by us for an older backup and untouched since: a chain's older VHD (or its flat json) a newer backup claims.
// Its entry is in the governing backup's day, or in its own name's day (the backup that wrote it). Such a unit needs
// its window and entry re-dated, not its flag set again (the flag helper would walk to it and find +i already on).
export async function lockedForOlder(
  index: EntryReader,
  backupInstant: number,
  unit: string,
  examined: Examined,
): Promise<Identity | undefined> {
  const days = new Set([dayOf(backupInstant)]);
  const named = parseBackupDatetime(path.basename(unit));
  if (named !== undefined && named < backupInstant) days.add(dayOf(named));
  for (const day of days) {
    const entry = await index.read(day, unit);
    if (isUnchangedSinceLock(entry, examined.identity)) return examined.identity;
  }
  return undefined;
}

// What a backup's window counts from (protect/arrival.ts): `created` is its json (or metadata.json), `anchor` what its
// arrival is recorded by (its json, or its date folder). The record is read only when it can matter.
export async function windowOfBackup(
  folder: LeafFolder,
  named: number,
  created: Examined,
  anchor: { path: string; examined: Examined },
  options: { now: number; maxClockJumpMs?: number; index?: EntryReader },
): Promise<WindowStartOf> {
  const { remote } = folder;
  const { now, maxClockJumpMs } = options;
  const born = bornOf(created);
  const rule = remote.windowStart ?? 'arrival';
  const reads =
    (rule === 'arrival' || isNamedInTheFuture(named, options)) && mayBeInWindow(named, born, now, remote.windowMs);
  const recorded = reads ? (await remote.index.windows.read(anchor.examined.identity))?.arrived : undefined;
  const { durationMs, watchedSince } = remote;
  const start = windowStartOf({ named, recorded, born, now, durationMs, watchedSince, rule, maxClockJumpMs });
  // Taken as arriving now, yet locked by its name already (an earlier start whose clock was behind, a lost
  // since.json): it was here before, and keeps that window.
  if (
    recorded === undefined &&
    start.arrived !== undefined &&
    !start.namedInTheFuture &&
    (await isLockedAsIndexed(options.index ?? remote.index, named, anchor.path, anchor.examined))
  )
    return { instant: named, namedInTheFuture: false };
  return start;
}

// A unit a reconcile found to lock, with what was examined of it.
export interface UnitToLock {
  unit: string;
  examined: Examined;
  // The kind claimed, not the one examined: a file swapped in where a directory was claimed (or the reverse) is
  // refused by the flag helper on its descriptor (EKIND) and tried again, never locked as the other kind.
  recursive: boolean;
  backup: BackupRef;
  // Already locked as indexed with this identity, for an older backup: re-dated without setting the flag again.
  lockedAs?: Identity;
}

// Adds the unit to the requests, or its refusal to the refusals. Where it is now is checked by the flag helper, which
// follows no link from the root (ECONFINE, a security warning).
export function addRequest(
  to: { requests: LockRequest[]; refusals: Refusal[] },
  folder: LeafFolder,
  { unit, examined, recursive, backup, lockedAs }: UnitToLock,
): void {
  const refusal = refusalFor(unit, examined);
  if (refusal !== undefined) to.refusals.push(refusal);
  else
    to.requests.push({
      remote: folder.remote,
      kind: folder.kind,
      unit,
      recursive,
      backup,
      ...(lockedAs === undefined ? {} : { lockedAs }),
      examined: examined.identity,
    });
}

// Only plain files and directories are units. A file with a second name is locked all the same (the flag helper says
// so): left unlocked, the backup it belongs to could be deleted; XO's credentials can only link files they can write.
export function refusalFor(unit: string, examined: Examined): Refusal | undefined {
  if (examined.type === 'symlink') return { path: unit, reason: 'it is a symbolic link', security: true };
  if (examined.type === 'other') return { path: unit, reason: 'it is not a regular file or directory', security: true };
  return undefined;
}
