import path from 'node:path';
import { METADATA_LIMIT } from '../backup/completion.js';
import type { VmSnapshot } from '../backup/snapshot.js';
import { completionOf, ownUnitsOf, unitsMemo, unitsOf } from '../backup/vm.js';
import type { DataDirectory } from '../remote/by-name.js';
import type { Identity } from '../remote/identity.js';
import { isFlatVhdName, MAX_REFERENCES_PER_JSON, type Claim, type UnitRef, type VmBackup } from '../remote/model.js';
import { futureWarning } from './arrival.js';
import { claimsByName } from './by-name.js';
import type { BackupRef, Refusal } from './context.js';

// Pure: what a reconcile of one VM folder claims, from one snapshot (backup/snapshot.ts) and what the index said of
// the backups it looks at. protect/reconcile.ts reads the snapshot and those facts, then acts on the claims.

// A backup looked at, with its window (protect/arrival.ts) and whether its json is locked as indexed.
export interface LookedAt {
  backup: VmBackup;
  instant: number;
  arrived?: number;
  namedInTheFuture: boolean;
  alreadyLocked: boolean;
}

export interface PlanFacts {
  // The VM folder's path: labels and refusals name absolute paths.
  folder: string;
  now: number;
  jsonSettleMs: number;
  protectChains: boolean;
  // Encrypted remotes: the VHD directories, with the flag of each that looks orphaned (protect/by-name.ts).
  data?: ReadonlyMap<string, readonly DataDirectory[]>;
}

export interface VmPlan {
  claims: Claim<BackupRef>[];
  refusals: Refusal[];
  warnings: Refusal[];
  recheckAt?: number;
  // The complete backups looked at: proven once every unit they govern is locked and indexed.
  provable: { json: string; identity: Identity }[];
  // Labels of the backups naming a unit that is not listed.
  missing: Set<string>;
  // Undefined when no complete backup was looked at, or chains are not protected.
  chainUnknown?: boolean;
  flatVhds?: boolean;
}

export function planVm(snapshot: VmSnapshot, looked: readonly LookedAt[], facts: PlanFacts): VmPlan {
  const plan: VmPlan = { claims: [], refusals: [], warnings: [], provable: [], missing: new Set() };
  const complete: BackupRef[] = [];
  const units = unitsPlanner(snapshot, facts, plan);
  for (const item of looked) {
    const json = snapshot.jsons.get(item.backup.metadata);
    if (json === undefined) continue;
    const label = path.join(facts.folder, item.backup.metadata);
    // Selected, but gone (or swapped) between its entry and its read: its units are unknown, so it proves nothing and
    // is looked at again soon, never taken as complete by its entry alone.
    if (json.unread === true) {
      plan.missing.add(label);
      continue;
    }
    if (json.size > METADATA_LIMIT)
      plan.warnings.push({
        path: label,
        security: true,
        reason:
          `it holds ${json.size} bytes, more than any json XO writes (${METADATA_LIMIT}): it is not read, ` +
          'and is locked with what its name gives once unchanged for 10 minutes',
      });
    // A json locked as indexed is complete; its units are checked at every reconcile all the same.
    const completion = item.alreadyLocked
      ? { complete: true as const, completedAt: json.mtimeMs }
      : completionOf(snapshot, item.backup, facts.now, facts.jsonSettleMs);
    if (!completion.complete) {
      if (completion.recheckAt !== undefined)
        plan.recheckAt = Math.min(plan.recheckAt ?? Infinity, completion.recheckAt);
      continue;
    }
    const { datetime } = item.backup;
    const ref: BackupRef = {
      label,
      datetime,
      instant: item.instant,
      completedAt: completion.completedAt,
      ...(item.namedInTheFuture ? { namedInTheFuture: true } : {}),
      ...(item.arrived === undefined ? {} : { arrived: item.arrived }),
    };
    if (item.namedInTheFuture)
      plan.warnings.push({ path: label, security: true, reason: futureWarning(datetime, item.instant) });
    const claimed = units(item.backup, label, !item.namedInTheFuture);
    plan.provable.push({ json: label, identity: json.identity });
    // A backup named in the future takes part in no chain, and claims only what carries its own name.
    const own = item.namedInTheFuture ? claimed.filter((unit) => isOwnUnit(unit, datetime)) : claimed;
    plan.claims.push(...own.map((unit) => ({ unit, backup: ref })));
    complete.push(ref);
  }
  if (complete.length === 0) return plan;
  if (snapshot.encrypted) claimByName(snapshot, facts, complete, plan);
  if (facts.protectChains) plan.chainUnknown ??= false;
  plan.flatVhds = plan.claims.some(
    (c) => c.unit.path.startsWith('vdis/') && !c.unit.recursive && isFlatVhdName(path.posix.basename(c.unit.path)),
  );
  return plan;
}

// Aliases are ciphertext there: which VHD directory is whose is read from names (remote/by-name.ts), and an encrypted
// VHD's parent cannot be read: with chains protected, the safe side is taken (and said).
function claimByName(snapshot: VmSnapshot, facts: PlanFacts, complete: readonly BackupRef[], plan: VmPlan): void {
  if (facts.protectChains && snapshot.vdis.length > 0) plan.chainUnknown = true;
  const data = facts.data ?? snapshot.data;
  const named = complete.filter((b) => b.namedInTheFuture !== true);
  const future = complete.filter((b) => b.namedInTheFuture === true);
  plan.claims.push(...claimsByName(snapshot.vdis, data, named, facts.protectChains));
  // A backup named in the future takes part in no chain, and claims only what carries its own name.
  plan.claims.push(
    ...claimsByName(snapshot.vdis, data, future, false).filter((c) => isOwnUnit(c.unit, c.backup.datetime)),
  );
}

// What carries the backup's own datetime in its name (its json, xva, VHDs, aliases and their directories).
function isOwnUnit(unit: UnitRef, datetime: string): boolean {
  return path.posix.basename(unit.path).startsWith(datetime);
}

// A complete backup's units as the backup model gives them (backup/vm.ts unitsOf, the one rule): with its chain unless
// `chains` is off. An alias pointing out of its VDI folder is refused, said once per folder. On encrypted remotes its
// own units only: the VHD directories are claimed by name (claimByName).
function unitsPlanner(
  snapshot: VmSnapshot,
  facts: PlanFacts,
  plan: VmPlan,
): (backup: VmBackup, label: string, chains: boolean) => UnitRef[] {
  const memo = unitsMemo(snapshot);
  const refused = new Set<string>();
  return (backup, label, chains) => {
    const found = snapshot.encrypted
      ? ownUnitsOf(snapshot, backup, memo.listing)
      : unitsOf(snapshot, backup, { chains: chains && facts.protectChains, memo });
    if (found.missing.length > 0) plan.missing.add(label);
    if (found.named > MAX_REFERENCES_PER_JSON)
      plan.warnings.push({
        path: label,
        security: true,
        reason:
          `it names ${found.named} paths, more than any json XO writes (${MAX_REFERENCES_PER_JSON} at most are looked at): ` +
          'only those and what its name gives are locked',
      });
    if (!('needed' in found)) return found.units;
    for (const problem of found.problems) {
      const at = path.join(facts.folder, path.posix.relative(snapshot.folder, problem.path));
      if (!refused.has(at)) plan.refusals.push({ path: at, security: true, reason: problem.reason });
      refused.add(at);
    }
    if (!found.chainKnown) plan.chainUnknown = true;
    return found.needed;
  };
}
