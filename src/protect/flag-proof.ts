import type { LeafFolder, LockRequest, Refusal } from './context.js';
import type { FlagReader, IndexedUnit } from './folder-report.js';
import { addRequest } from './request.js';

// What reads the immutable flags: the flag helper, one run for many paths.
export type { FlagReader, IndexedUnit } from './folder-report.js';

export const FLAG_OFF_REASON = 'indexed as locked but its immutable flag is off: it is locked again';

// What reading the flags of one folder's units found: each unit with its flag off is asked for again (or refused), with
// a warning. A refusal takes the folder's proofs back, as in the reconcile itself.
export interface FlagFindings {
  folder: LeafFolder;
  requests: LockRequest[];
  refusals: Refusal[];
  warnings: Refusal[];
}

// "Unchanged since the lock" is not "locked": an entry written for a unit never locked (or a lock that never reached
// the flag) records its identity exactly. A full proof's reconciles list the units they found locked as indexed
// (`flagsToRead`); their flags are read here for a whole round, in one helper run per remote (one run per folder cost
// 11 ms a folder, docs/performance.md), and each unit whose flag is off is asked for again. Event reconciles keep the
// identity check. Returns what was found, per folder with a flag off.
export async function relockFlagsOff(
  reconciled: readonly { folder: LeafFolder; report: { flagsToRead?: IndexedUnit[] } }[],
  flags: FlagReader,
): Promise<FlagFindings[]> {
  const byRemote = new Map<string, { remote: LeafFolder['remote']; paths: string[] }>();
  for (const { folder, report } of reconciled) {
    if (report.flagsToRead === undefined) continue;
    let group = byRemote.get(folder.remote.id);
    if (group === undefined) byRemote.set(folder.remote.id, (group = { remote: folder.remote, paths: [] }));
    for (const { unit } of report.flagsToRead) group.paths.push(unit);
  }
  const read = new Map<string, boolean | undefined>();
  for (const { remote, paths } of byRemote.values()) {
    if (paths.length === 0) continue;
    for (const [unit, on] of await flags.isImmutable(remote, paths)) read.set(unit, on);
  }
  const findings: FlagFindings[] = [];
  for (const { folder, report } of reconciled) {
    const units = report.flagsToRead;
    // Dropped once read: the round keeps its reports until its lock batch is done.
    delete report.flagsToRead;
    // undefined: gone, or no longer a plain file or directory; the next reconcile sees what is there now.
    const off = units?.filter(({ unit }) => read.get(unit) === false) ?? [];
    if (off.length > 0) findings.push(relock(folder, off));
  }
  return findings;
}

function relock(folder: LeafFolder, off: readonly IndexedUnit[]): FlagFindings {
  const found: FlagFindings = { folder, requests: [], refusals: [], warnings: [] };
  for (const indexed of off) {
    found.warnings.push({ path: indexed.unit, security: true, reason: FLAG_OFF_REASON });
    // Where it is now is checked by the flag helper, which follows no link from the root (ECONFINE, a security warning).
    addRequest(found, folder, indexed);
  }
  return found;
}
