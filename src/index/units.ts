import type { Identity } from '../remote/identity.js';
import type { BackupKind } from '../remote/patterns.js';
import { futureNameOf, type IndexEntry } from './entry.js';
import type { StoredEntry } from './store.js';

// One unit of the index: its path, with every entry that names it (a lift forgets them all once it unlocked it).
export interface IndexedUnit {
  path: string;
  kind: BackupKind;
  recursive: boolean;
  // The newest backup that references the unit: its window is the one that counts.
  governingInstant: number;
  // The day bucket of the governing entry, for reporting per day.
  day: string;
  entries: { day: string; name: string }[];
  // As recorded at lock time by the newest entry that recorded one; pending entries have none.
  identity: Identity | undefined;
  // The governing backup (its json, or its date folder).
  backup: string;
  // The governing backup was named in the future and dated by its arrival: the instant its name says.
  futureName?: number;
  // The governing entry says a repair lift began clearing it: its flag on says nothing of what is below.
  unlocking?: boolean;
}

// Groups the entries by path: each unit with the newest backup that references it. Paths named by an entry whose
// datetime cannot be read are set apart as blocked (they may belong to a newer backup).
export function groupByPath(stored: readonly StoredEntry[]): {
  units: IndexedUnit[];
  unreadable: StoredEntry[];
  blocked: Set<string>;
} {
  const byPath = new Map<string, IndexedUnit>();
  const unreadable: StoredEntry[] = [];
  const blocked = new Set<string>();
  for (const item of stored) {
    const { entry } = item;
    const instant = entry === undefined ? Number.NaN : Date.parse(entry.backupDatetime);
    if (entry === undefined || Number.isNaN(instant)) {
      unreadable.push(item);
      const named = entry?.path ?? bareLegacyPath(item.text);
      if (named !== undefined) blocked.add(named);
      continue;
    }
    const candidate = byPath.get(entry.path);
    if (candidate === undefined) {
      byPath.set(entry.path, {
        path: entry.path,
        kind: entry.kind,
        recursive: entry.recursive,
        governingInstant: instant,
        day: item.day,
        entries: [{ day: item.day, name: item.name }],
        identity: entry.identity,
        backup: entry.backup,
        futureName: futureNameOf(entry),
        ...(entry.state === 'unlocking' ? { unlocking: true } : {}),
      });
      continue;
    }
    candidate.entries.push({ day: item.day, name: item.name });
    candidate.recursive ||= entry.recursive;
    if (instant >= candidate.governingInstant) {
      candidate.governingInstant = instant;
      candidate.day = item.day;
      candidate.identity = entry.identity ?? candidate.identity;
      candidate.backup = entry.backup;
      candidate.futureName = futureNameOf(entry);
      if (entry.state === 'unlocking') candidate.unlocking = true;
      else delete candidate.unlocking;
    }
  }
  return { units: [...byPath.values()], unreadable, blocked };
}

// What a look at a unit needs of the index (status's restore points): the instant of the newest backup referencing it
// and the identity recorded then, as groupByPath's units say.
export interface GoverningFacts {
  governingInstant: number;
  identity: Pick<Identity, 'dev' | 'ino' | 'ctimeNs'> | undefined;
  // The governing entry was marked unlocking by a repair lift (its clear may have stopped part-way).
  unlocking?: boolean;
}

// Adds entries to `byPath`, as groupByPath would group them read in the same order (buckets oldest first): what a
// survey needs of the index, one small record per unit, without every entry's text.
export function foldGoverning(byPath: Map<string, GoverningFacts>, entries: readonly (IndexEntry | undefined)[]): void {
  for (const entry of entries) {
    const instant = entry === undefined ? Number.NaN : Date.parse(entry.backupDatetime);
    if (entry === undefined || Number.isNaN(instant)) continue;
    const candidate = byPath.get(entry.path);
    const identity = entry.identity && {
      dev: entry.identity.dev,
      ino: entry.identity.ino,
      ctimeNs: entry.identity.ctimeNs,
    };
    const unlocking = entry.state === 'unlocking' ? { unlocking: true } : {};
    if (candidate === undefined) byPath.set(entry.path, { governingInstant: instant, identity, ...unlocking });
    else if (instant >= candidate.governingInstant) {
      candidate.governingInstant = instant;
      candidate.identity = identity ?? candidate.identity;
      if (entry.state === 'unlocking') candidate.unlocking = true;
      else delete candidate.unlocking;
    }
  }
}

// Paths named by entries that cannot be read: they may belong to a newer backup, so they stay locked.
export function blockedPaths(unreadable: readonly StoredEntry[]): string[] {
  return unreadable.flatMap((item) => {
    const named = item.entry?.path ?? bareLegacyPath(item.text);
    return named === undefined ? [] : [named];
  });
}

// The prior art's entries hold nothing but the absolute path.
function bareLegacyPath(text: string): string | undefined {
  const trimmed = text.trim();
  return trimmed.startsWith('/') && !trimmed.includes('\n') ? trimmed : undefined;
}
