import { hash } from 'node:crypto';
import path from 'node:path';
import { parseBackupDatetime, utcDay } from '../remote/datetime.js';
import type { Identity } from '../remote/identity.js';
import type { BackupKind } from '../remote/patterns.js';

// What a unit looked like right after it was locked; a changed ctime means someone lifted or altered it.
// One protected unit. Written as "pending" before its flag is set (write-ahead) and "locked", with its identity, after.
// A repair lift writes "unlocking" before it clears the flag: one that stopped part-way leaves a directory's top still
// immutable and its ctime unchanged, so only this state says what is below may be mutable (locked again by the helper).
export interface IndexEntry {
  version: 1;
  state: 'pending' | 'locked' | 'unlocking';
  remote: string;
  path: string;
  kind: BackupKind;
  recursive: boolean;
  backup: string;
  backupDatetime: string;
  day: string;
  requestedAt: string;
  lockedAt?: string;
  identity?: Identity;
}

export function entryName(absolutePath: string): string {
  // One-shot: a Hash object per name cost twice as much, and names are computed for every read and write.
  return hash('sha256', absolutePath, 'hex');
}

export function dayOf(backupInstant: number): string {
  return utcDay(backupInstant);
}

export interface EntryRequest {
  remote: string;
  path: string;
  kind: BackupKind;
  recursive: boolean;
  backup: string;
  backupInstant: number;
}

export function pendingEntry(request: EntryRequest, now: number): IndexEntry {
  return {
    version: 1,
    state: 'pending',
    remote: request.remote,
    path: request.path,
    kind: request.kind,
    recursive: request.recursive,
    backup: request.backup,
    backupDatetime: new Date(request.backupInstant).toISOString(),
    day: dayOf(request.backupInstant),
    requestedAt: new Date(now).toISOString(),
  };
}

export function lockedEntry(pending: IndexEntry, identity: Identity, now: number): IndexEntry {
  return { ...pending, state: 'locked', lockedAt: new Date(now).toISOString(), identity };
}

export function unlockingEntry(locked: IndexEntry): IndexEntry {
  return { ...locked, state: 'unlocking' };
}

// Still locked as we left it: same inode, and nothing (not even clearing the flag) has touched its ctime since.
export function isUnchangedSinceLock(entry: IndexEntry | undefined, current: Identity): boolean {
  return (
    entry?.state === 'locked' &&
    entry.identity !== undefined &&
    entry.identity.dev === current.dev &&
    entry.identity.ino === current.ino &&
    entry.identity.ctimeNs === current.ctimeNs
  );
}

// A backup named in the future (later than now + maxClockJump) is dated by its arrival (protect/reconcile.ts), so the
// name of its json or folder says a later instant than its entry: that instant, or undefined for any other entry.
export function futureNameOf(entry: IndexEntry): number | undefined {
  const named = parseBackupDatetime(path.basename(entry.backup));
  return named !== undefined && named > Date.parse(entry.backupDatetime) ? named : undefined;
}

export function parseEntry(text: string): IndexEntry | undefined {
  try {
    const value = JSON.parse(text) as Partial<IndexEntry>;
    if (value.version !== 1 || typeof value.path !== 'string' || typeof value.day !== 'string') return undefined;
    return value as IndexEntry;
  } catch {
    return undefined;
  }
}
