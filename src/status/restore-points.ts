// Pure: which backups inside their window XO could restore after an attack, and why not the others. A restore point
// is protected only when its json, its own units and every unit its disks are built on have their immutable flag on
// and are the very inodes locked, unchanged since: an index entry alone proves nothing.

export type UnprotectedReason = 'base-expired' | 'unit-missing' | 'unit-unlocked' | 'unit-changed' | 'chain-unknown';

// What was found about one unit, with no judgement yet.
export interface UnitFacts {
  exists: boolean;
  // The very inode a locked index entry recorded, ctime untouched since (clearing the flag moves the ctime).
  unchangedSinceLock: boolean;
  // When the lift may unlock it: its newest governing backup plus the duration. Undefined: not indexed.
  indexedUntil?: number;
  // The immutable flag, as the flag helper reads it (undefined: not read, or the unit went away meanwhile).
  immutable?: boolean;
  // A repair lift began clearing it (index/entry.ts): a directory's top still locked says nothing of what is below.
  unlocking?: boolean;
}

// One backup inside its window, as the remote shows it.
export interface RestorePointModel {
  // The json's file name.
  backup: string;
  instant: number;
  // Paths (relative to the VM folder) of its json and its own disks, xva and checksum.
  own: string[];
  // Paths of every VHD (and alias) its disks are built on.
  chain: string[];
  // The chain could be read to its base (false: encrypted remote, damaged header).
  chainKnown: boolean;
}

export interface VmModel {
  vm: string;
  points: RestorePointModel[];
  units: ReadonlyMap<string, UnitFacts>;
}

export interface VmRestorePoints {
  vm: string;
  inWindow: number;
  protected: number;
  // The latest time until which some restore point of the VM stays protected (null: none is).
  protectedUntil: string | null;
  unprotected: { backup: string; reason: UnprotectedReason }[];
}

export interface RestorePoints {
  inWindow: number;
  protected: number;
  unprotected: number;
  // Among the unprotected: restore points whose chain cannot be read (locked on the safe side, not provable).
  chainUnknown: number;
  vms: VmRestorePoints[];
}

// Most telling first: a unit gone is a loss, an unlocked one an exposure, a chain unread only a limit of what we know.
const SEVERITY: UnprotectedReason[] = ['unit-missing', 'unit-unlocked', 'unit-changed', 'base-expired'];

// A unit's verdict: locked until when, or why not. A chain unit whose lock ended by design is an expired base.
export function judgeUnit(
  facts: UnitFacts | undefined,
  inChain: boolean,
  now: number,
): { until: number } | { reason: UnprotectedReason } {
  if (facts === undefined || !facts.exists) return { reason: 'unit-missing' };
  const open = facts.indexedUntil !== undefined && facts.indexedUntil > now;
  // The flag off: writable, whatever the index recorded (an entry for a unit never locked, or unlocked since).
  if (facts.immutable !== true || facts.unlocking === true)
    return { reason: inChain && !open ? 'base-expired' : 'unit-unlocked' };
  if (facts.unchangedSinceLock && open) return { until: facts.indexedUntil! };
  // Still locked, but the next lift pass unlocks it.
  if (facts.unchangedSinceLock) return { reason: inChain ? 'base-expired' : 'unit-unlocked' };
  // Locked, but not the inode or the state this daemon locked (replaced, altered and locked again, or locked by hand).
  return { reason: 'unit-changed' };
}

export function judgeRestorePoint(
  point: RestorePointModel,
  units: ReadonlyMap<string, UnitFacts>,
  now: number,
): { until: number } | { reason: UnprotectedReason } {
  const reasons = new Set<UnprotectedReason>();
  let until = Infinity;
  const own = new Set(point.own);
  for (const [paths, inChain] of [
    [point.own, false],
    [point.chain.filter((p) => !own.has(p)), true],
  ] as const) {
    for (const unit of paths) {
      const verdict = judgeUnit(units.get(unit), inChain, now);
      if ('reason' in verdict) reasons.add(verdict.reason);
      else until = Math.min(until, verdict.until);
    }
  }
  const worst = SEVERITY.find((reason) => reasons.has(reason));
  if (worst !== undefined) return { reason: worst };
  if (!point.chainKnown) return { reason: 'chain-unknown' };
  return { until };
}

export function judgeVm(vm: VmModel, now: number): VmRestorePoints {
  let latest: number | undefined;
  const unprotected: VmRestorePoints['unprotected'] = [];
  for (const point of [...vm.points].sort((a, b) => a.instant - b.instant)) {
    const verdict = judgeRestorePoint(point, vm.units, now);
    if ('reason' in verdict) unprotected.push({ backup: point.backup, reason: verdict.reason });
    else latest = Math.max(latest ?? verdict.until, verdict.until);
  }
  return {
    vm: vm.vm,
    inWindow: vm.points.length,
    protected: vm.points.length - unprotected.length,
    protectedUntil: latest === undefined || !Number.isFinite(latest) ? null : new Date(latest).toISOString(),
    unprotected,
  };
}

export function judgeRemote(vms: readonly VmModel[], now: number): RestorePoints {
  const judged = vms.map((vm) => judgeVm(vm, now)).filter((vm) => vm.inWindow > 0);
  judged.sort((a, b) => (a.vm < b.vm ? -1 : a.vm > b.vm ? 1 : 0));
  return summarize(judged);
}

export function summarize(vms: VmRestorePoints[]): RestorePoints {
  const sum = (count: (vm: VmRestorePoints) => number): number => vms.reduce((n, vm) => n + count(vm), 0);
  return {
    inWindow: sum((vm) => vm.inWindow),
    protected: sum((vm) => vm.protected),
    unprotected: sum((vm) => vm.unprotected.length),
    chainUnknown: sum((vm) => vm.unprotected.filter((u) => u.reason === 'chain-unknown').length),
    vms,
  };
}
