import { windowMsOf } from '../remote/model.js';
import type { BackupShape } from './restore-survey.js';

// Pure: XO job settings that fight the immutability window, read from what XO left on the remote. XO records neither
// its retention nor its full backup interval in a backup, so both are inferred (docs/operations.md, "Chains"): the run
// interval from the datetimes of one schedule's backups, fulls from the VHD headers (a merged base counts as a full).

export type XoSettingProblem = 'chain-never-freed' | 'retention-collides';

export interface XoSettingAdvice {
  vm: string;
  problem: XoSettingProblem;
  // What the remote shows, with how sure that is.
  detail: string;
  // What to set in XO.
  set: string;
}

export interface VmShapes {
  vm: string;
  backups: readonly BackupShape[];
  // ".<parent>.merge.json" files XO left in VDI folders: a merge that failed and will be tried again.
  blockedMerges: readonly string[];
}

const DAY = 86_400_000;

// `durationMs`: the configured immutabilityDuration. A full every ceil(duration / interval) runs lies inside every
// window (a window is the duration + its slack, remote/model.ts windowMsOf: longer); retention must hold the runs a
// window holds, the slack included, since that is how long a backup stays locked. A chain reaches back past the
// window when its base is older than the window (as `inWindow` says), not than the duration.
export function adviseXoSettings(vms: readonly VmShapes[], now: number, durationMs: number): XoSettingAdvice[] {
  const windowMs = windowMsOf(durationMs);
  const advice: XoSettingAdvice[] = [];
  for (const vm of vms) {
    const schedules = new Map<string, BackupShape[]>();
    for (const backup of vm.backups) {
      if (backup.mode !== 'delta' || backup.scheduleId === undefined) continue;
      schedules.set(backup.scheduleId, [...(schedules.get(backup.scheduleId) ?? []), backup]);
    }
    let collides = vm.blockedMerges.length > 0;
    let runsNeeded: number | undefined;
    for (const backups of schedules.values()) {
      const sorted = [...backups].sort((a, b) => a.instant - b.instant);
      const interval = medianGap(sorted.map((b) => b.instant));
      const runs = interval === undefined ? undefined : Math.ceil(durationMs / interval);
      runsNeeded = interval === undefined ? undefined : Math.ceil(windowMs / interval);
      const inWindow = sorted.filter((b) => b.inWindow);
      const newest = inWindow.at(-1);
      const reachesBack = (b: BackupShape | undefined): boolean =>
        b?.baseInstant !== undefined && b.baseInstant <= now - windowMs;
      if (newest !== undefined && !inWindow.some((b) => b.full === true) && reachesBack(newest))
        advice.push({
          vm: vm.vm,
          problem: 'chain-never-freed',
          detail:
            `no full backup inside the ${days(durationMs)}-day window: the chain reaches back to ` +
            `${new Date(newest.baseInstant!).toISOString().slice(0, 10)} and stays locked while newer deltas need it; ` +
            "if XO's full backup interval is not set, the chain never ends and is never freed",
          set:
            `in XO's backup job, set "Full backup interval" to at most ${runs ?? 'the number of runs inside the window'}` +
            ' (a full then always lies inside the window, and a chain is freed at most one interval after its window)',
        });
      // Every json of the schedule inside the window while its chain started before: XO's retention keeps no more
      // than the window holds, so it deletes backups that are still locked. Probable, not certain (a new job too).
      if (runs !== undefined && sorted.length >= runs && sorted.every((b) => b.inWindow) && reachesBack(inWindow[0]))
        collides = true;
    }
    if (collides)
      advice.push({
        vm: vm.vm,
        problem: 'retention-collides',
        detail:
          vm.blockedMerges.length > 0
            ? `XO left ${vm.blockedMerges.length} unfinished merge(s) (${vm.blockedMerges[0]}): its retention reached ` +
              'a backup whose chain is still locked, so its merge fails (EPERM) until the chain leaves its window'
            : "every retained backup is inside the window although its chain started before it: XO's retention " +
              'probably keeps no more runs than the window holds, so it tries to delete backups still locked (EPERM)',
        set:
          `in XO's schedule, set retention to at least ${runsNeeded ?? 'the runs inside the window'} plus the full ` +
          'backup interval (runs), or lower immutabilityDuration to retention minus the full backup interval',
      });
  }
  return advice;
}

function medianGap(instants: readonly number[]): number | undefined {
  const gaps = instants
    .slice(1)
    .map((instant, i) => instant - instants[i]!)
    .filter((gap) => gap > 0)
    .sort((a, b) => a - b);
  return gaps.length === 0 ? undefined : gaps[Math.floor(gaps.length / 2)];
}

function days(ms: number): string {
  return String(Math.round((ms / DAY) * 10) / 10);
}
