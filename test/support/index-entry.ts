import { lstatSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { dayOf, entryName, type IndexEntry } from '../../src/index/entry.js';
import { UnitWindows } from '../../src/index/windows.js';
import { identityOf } from '../../src/remote/identity.js';

// An index entry written by hand, as "locked", with the unit's identity as it is now: what a lock that never reached
// the flag would leave (or an attacker with the index). The unit's flag stays as it is.
export async function indexAsLocked(
  indexPath: string,
  unit: string,
  backup: { json: string; instant: number; recursive?: boolean },
): Promise<void> {
  const stats = lstatSync(unit, { bigint: true });
  const now = new Date().toISOString();
  const entry: IndexEntry = {
    version: 1,
    state: 'locked',
    remote: 'r',
    path: unit,
    kind: 'vm',
    recursive: backup.recursive ?? stats.isDirectory(),
    backup: backup.json,
    backupDatetime: new Date(backup.instant).toISOString(),
    day: dayOf(backup.instant),
    requestedAt: now,
    lockedAt: now,
    identity: identityOf(stats),
  };
  const folder = path.join(indexPath, 'r', entry.day);
  await mkdir(folder, { recursive: true, mode: 0o700 });
  await writeFile(path.join(folder, entryName(unit)), `${JSON.stringify(entry)}\n`);
  // A json's arrival is recorded at its lock (protect/arrival.ts): here, at its name's datetime.
  if (unit === backup.json)
    await new UnitWindows(indexPath, 'r').extend(entry.identity!, backup.instant, unit, backup.instant);
}
