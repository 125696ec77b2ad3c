import type { CapFigures } from '../caps.js';
import { holdJson, type Hold, type HeldVm } from '../holds/rules.js';
import type { StoredEntry } from '../index/store.js';
import { groupByPath } from '../index/units.js';
import { windowMsOf } from '../remote/model.js';
import { utcDay } from '../remote/datetime.js';
import { HEARTBEAT_STALE_MS, type DaemonStatus } from './daemon-status.js';
import type { ChainCost } from './chain-cost.js';
import type { RestorePoints } from './restore-points.js';
import type { XoSettingAdvice } from './xo-settings.js';

// 2: remotes[].restorePoints (what XO could restore after an attack).
export const STATUS_SCHEMA_VERSION = 2;

export interface RemoteStatus {
  id: string;
  root: string;
  healthy: boolean | null;
  problem: string | null;
  // null when the daemon is not running.
  waitingForXo: boolean | null;
  // Encrypted remote: VHD directories matched to backups by name alone. null when the daemon is not running.
  protectedByNameOnly: boolean | null;
  // VM folders whose VHD chains could not be read (kept locked on the safe side). null when the daemon is not running.
  vmsWithUnknownChain: number | null;
  // VM folders storing flat .vhd files (XO cannot restore them while locked). null when the daemon is not running.
  vmsWithFlatVhds: number | null;
  // VM folders holding a symbolic link where XO writes a json or a folder (planted: never followed nor locked), as the
  // daemon last looked at them. null when the daemon is not running.
  vmsWithPlantedLinks: number | null;
  immutabilityDurationMs: number;
  protectedUnits: number;
  protectedBackups: number;
  oldestBackup: string | null;
  newestBackup: string | null;
  // Units that become mutable each UTC day, today first (today includes any already due at the next pass).
  unlocks: { day: string; units: number }[];
  // Units whose entries were all written ahead of a lock that never completed (no identity recorded): lift does not
  // unlock them; an admin checks each (verify names them). The first 10 paths are listed.
  pendingUnits: number;
  pendingPaths: string[];
  lastLift: { at: string; unlocked: number; failed: number; suspicious: number } | null;
  // Why the lift passes skip the remote (paused for a fault: nothing of it is unlocked). null otherwise, or when the
  // daemon is not running.
  liftSkipped: string | null;
  // Backups inside their window and whether XO could restore each after an attack, read from the remote when
  // `status` ran. null when the remote could not be read.
  restorePoints: RestorePoints | null;
  // What the remote holds beyond XO's retention, and the VDI folders never freed (status/chain-cost.ts). null when the
  // remote could not be read.
  chainCost: ChainCost | null;
  // XO job settings that fight the window, per VM (status/xo-settings.ts). null when the remote could not be read.
  xoSettings: XoSettingAdvice[] | null;
  // VMs a repair lift left unlocked (hold start), soonest end first: protection is off for them until `until`.
  holds: HeldVm[];
  // Counts against the remote's caps, as the running daemon last saw them; null when the daemon is not running (or a
  // daemon of an earlier release). watchedFolders null: the remote is not watched.
  caps?: { watchedFolders: CapFigures | null; indexEntries: CapFigures } | null;
}

// The `status --json` document: docs/status.schema.json describes it, version by version.
export interface StatusReport {
  version: typeof STATUS_SCHEMA_VERSION;
  generatedAt: string;
  daemon: {
    running: boolean;
    pid: number | null;
    heartbeat: string | null;
    startedAt: string | null;
    version: string | null;
  };
  lifting: { frozen: boolean; reason: string | null };
  lastLock: { at: string; units: number; failed: number } | null;
  errorsSinceStart: number | null;
  securityWarningsSinceStart: number | null;
  // Folders failing again and again, tried less and less often; null when the daemon is not running.
  foldersBackingOff: number | null;
  inotify: { watchedFolders: number | null; maxUserWatches: number | null };
  remotes: RemoteStatus[];
}

export interface RemoteInput {
  id: string;
  root: string;
  // The configured immutabilityDuration (shown as is; a unit's unlock day adds its slack).
  durationMs: number;
  stored: StoredEntry[];
  restorePoints?: RestorePoints | null;
  chainCost?: ChainCost | null;
  xoSettings?: XoSettingAdvice[] | null;
  holds: readonly Hold[];
}

// Pure: what the index, the daemon's own status file and the clock state say, as one report.
export function buildStatus(input: {
  now: number;
  daemon: DaemonStatus | undefined;
  daemonProcessExists: boolean;
  frozenReason: string | undefined;
  maxUserWatches: number | undefined;
  remotes: RemoteInput[];
  days?: number;
}): StatusReport {
  const { daemon, now } = input;
  const running =
    daemon !== undefined &&
    daemon.stoppedAt === undefined &&
    input.daemonProcessExists &&
    now - Date.parse(daemon.heartbeat) < HEARTBEAT_STALE_MS;
  return {
    version: STATUS_SCHEMA_VERSION,
    generatedAt: new Date(now).toISOString(),
    daemon: {
      running,
      pid: daemon?.pid ?? null,
      heartbeat: daemon?.heartbeat ?? null,
      startedAt: daemon?.startedAt ?? null,
      version: daemon?.daemonVersion ?? null,
    },
    lifting: { frozen: input.frozenReason !== undefined, reason: input.frozenReason ?? null },
    lastLock: daemon?.lastLock ?? null,
    errorsSinceStart: running ? daemon.errors : null,
    securityWarningsSinceStart: running ? daemon.securityWarnings : null,
    foldersBackingOff: running ? (daemon.foldersBackingOff ?? 0) : null,
    inotify: { watchedFolders: running ? daemon.watchedFolders : null, maxUserWatches: input.maxUserWatches ?? null },
    remotes: input.remotes.map((remote) =>
      remoteStatus(
        remote,
        daemon?.remotes.find((r) => r.id === remote.id),
        running,
        now,
        input.days ?? 14,
      ),
    ),
  };
}

// One remote: what the index says, and what the running daemon last said of it (null when it is not running).
function remoteStatus(
  remote: RemoteInput,
  seen: DaemonStatus['remotes'][number] | undefined,
  running: boolean,
  now: number,
  days: number,
): RemoteStatus {
  const live = running && seen !== undefined;
  return {
    ...summarizeRemote(remote, now, days),
    healthy: live ? seen.healthy : null,
    problem: seen?.problem ?? null,
    waitingForXo: live ? seen.waitingForXo === true : null,
    protectedByNameOnly: live ? seen.protectedByNameOnly === true : null,
    vmsWithUnknownChain: live ? (seen.vmsWithUnknownChain ?? 0) : null,
    vmsWithFlatVhds: live ? (seen.vmsWithFlatVhds ?? 0) : null,
    vmsWithPlantedLinks: live ? (seen.vmsWithPlantedLinks ?? 0) : null,
    lastLift: seen?.lastLift ?? null,
    liftSkipped: live ? (seen.liftSkipped ?? null) : null,
    caps:
      live && seen.caps !== undefined
        ? { watchedFolders: seen.caps.watchedFolders ?? null, indexEntries: seen.caps.indexEntries }
        : null,
    restorePoints: remote.restorePoints ?? null,
    chainCost: remote.chainCost ?? null,
    xoSettings: remote.xoSettings ?? null,
    holds: remote.holds.filter((hold) => Date.parse(hold.until) > now).map(holdJson),
  };
}

// What the index says of a remote (the rest of RemoteStatus comes from the daemon and the survey).
function summarizeRemote(remote: RemoteInput, now: number, days: number) {
  const { units } = groupByPath(remote.stored);
  const today = utcDay(now);
  const timeline = new Map<string, number>();
  for (let i = 0; i < days; i++) timeline.set(utcDay(now + i * 86_400_000), 0);
  const backups = new Set<string>();
  let oldest: number | undefined;
  let newest: number | undefined;
  for (const unit of units) {
    backups.add(unit.backup);
    oldest = Math.min(oldest ?? unit.governingInstant, unit.governingInstant);
    newest = Math.max(newest ?? unit.governingInstant, unit.governingInstant);
    const day = utcDay(Math.max(now, unit.governingInstant + windowMsOf(remote.durationMs)));
    if (timeline.has(day)) timeline.set(day, (timeline.get(day) ?? 0) + 1);
    else if (day < today) timeline.set(today, (timeline.get(today) ?? 0) + 1);
  }
  return {
    id: remote.id,
    root: remote.root,
    immutabilityDurationMs: remote.durationMs,
    protectedUnits: units.length,
    protectedBackups: backups.size,
    oldestBackup: oldest === undefined ? null : new Date(oldest).toISOString(),
    newestBackup: newest === undefined ? null : new Date(newest).toISOString(),
    unlocks: [...timeline].map(([day, count]) => ({ day, units: count })),
    ...pendingUnits(remote.stored),
  };
}

// Paths none of whose entries records an identity: written ahead of a flag change that failed or never ran (a unit
// mid-batch shows here for a moment too).
export function pendingUnits(stored: readonly StoredEntry[]): { pendingUnits: number; pendingPaths: string[] } {
  const identified = new Map<string, boolean>();
  for (const { entry } of stored)
    if (entry !== undefined)
      identified.set(entry.path, (identified.get(entry.path) ?? false) || entry.identity !== undefined);
  const pending = [...identified].filter(([, known]) => !known).map(([p]) => p);
  return { pendingUnits: pending.length, pendingPaths: pending.sort().slice(0, 10) };
}
