import { hash } from 'node:crypto';
import type { Identity } from '../remote/identity.js';

// A unit's window record by identity (index/windows.ts): its shape, its name, and how a lock extends it.

export interface UnitWindow {
  // The end of the latest window this very unit was ever locked for.
  until: number;
  // Where it was last locked.
  path: string;
  // On a backup's json (or config and pool date folder): the moment the daemon first found the backup complete, its
  // window's start (protect/arrival.ts). A record without it (older releases, other units) says nothing of arrival.
  arrived?: number;
}

// Pure: the record of a unit's window once extended to `until`, or undefined when `before` already says as much. The
// path recorded is the one whose window is the latest; the arrival, the earliest recorded.
export function extended(
  before: UnitWindow | undefined,
  until: number,
  unitPath: string,
  arrived: number | undefined,
): UnitWindow | undefined {
  const later = before === undefined || until > before.until;
  if (!later && (arrived === undefined || before.arrived !== undefined)) return undefined;
  const record: UnitWindow = later ? { until, path: unitPath } : { until: before.until, path: before.path };
  const first = before?.arrived ?? arrived;
  if (first !== undefined) record.arrived = first;
  return Number.isFinite(record.until) ? record : undefined;
}

// A record's name in the folder, as every release wrote it.
export function nameOf(identity: Identity): string {
  return hash('sha256', `${identity.ino}:${identity.birthtimeNs ?? '0'}`, 'hex');
}
