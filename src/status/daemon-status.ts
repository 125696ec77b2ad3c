import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../atomic.js';
import type { CapFigures } from '../caps.js';
import type { ChainCost } from './chain-cost.js';
import type { RestorePoints } from './restore-points.js';

export type RestorePointCounts = Omit<RestorePoints, 'vms'> & { checkedAt: string };
export type ChainCostCounts = Omit<ChainCost, 'unfreedVdis'> & { unfreedVdis: number };

export const DAEMON_STATUS_FILE = 'status.json';
// The daemon rewrites status.json every 10 s: three missed beats mean it is not running.
export const HEARTBEAT_STALE_MS = 35_000;

// What the running daemon says about itself, rewritten at every health check (every 10 s): the heartbeat shows it is
// alive, each remote whether it is protected, and the clock guard whether lifting is frozen. `status` reads it.
// 2: remotes[].restorePoints. `status` reads version 1 too (a daemon of the previous release still running).
export const DAEMON_STATUS_VERSION = 2;

export interface DaemonStatus {
  version: 1 | typeof DAEMON_STATUS_VERSION;
  daemonVersion: string;
  pid: number;
  startedAt: string;
  heartbeat: string;
  // Set by the last write of a daemon that stopped cleanly: its heartbeat then means nothing.
  stoppedAt?: string;
  remotes: {
    id: string;
    root: string;
    healthy: boolean;
    problem?: string;
    unhealthySince?: string;
    // A new remote XO has not written to yet: nothing to protect, and nothing written at its root (not a fault).
    waitingForXo?: boolean;
    // Encrypted: aliases and jsons are ciphertext, so VHD directories are matched to backups by name alone.
    protectedByNameOnly?: boolean;
    // VM folders whose VHD chains could not be read: their older VHDs are kept locked on the safe side.
    vmsWithUnknownChain?: number;
    // VM folders storing flat .vhd files, which XO cannot restore while they are locked.
    vmsWithFlatVhds?: number;
    // VM folders holding a symbolic link where XO writes a json or a folder, as their last look found them.
    vmsWithPlantedLinks?: number;
    lastLift?: { at: string; unlocked: number; failed: number; suspicious: number };
    // Why the lift passes skip the remote while it is paused (daemon/lift-loop.ts).
    liftSkipped?: string;
    // The daemon's last count of the restore points inside their window (status/restore-points.ts), as the metrics
    // say; `status` reads the remote itself.
    restorePoints?: RestorePointCounts;
    // The daemon's last count of what the remote holds beyond XO's retention (status/chain-cost.ts), counted with the
    // restore points; unfreedVdis: how many VDI folders never free their chains.
    chainCost?: ChainCostCounts;
    // Counts against the remote's caps (maxWatchedFolders, maxIndexEntries); watchedFolders is absent when the remote
    // is not watched.
    caps?: { watchedFolders?: CapFigures; indexEntries: CapFigures };
  }[];
  lifting: { frozen: boolean; reason?: string };
  lastLock?: { at: string; units: number; failed: number };
  // Since the daemon started: failures (lock, index, reconcile, a remote becoming unavailable, a status file not
  // written) and security warnings (refused units, holds, planted status files).
  errors: number;
  securityWarnings: number;
  watchedFolders: number;
  // Folders failing again and again, tried less and less often (protect/backoff.ts).
  foldersBackingOff?: number;
}

export async function writeDaemonStatus(indexPath: string, status: DaemonStatus): Promise<void> {
  await mkdir(indexPath, { recursive: true, mode: 0o700 });
  await writeFileAtomic(path.join(indexPath, DAEMON_STATUS_FILE), `${JSON.stringify(status, null, 2)}\n`, 0o600);
}

export async function readDaemonStatus(indexPath: string): Promise<DaemonStatus | undefined> {
  try {
    return JSON.parse(await readFile(path.join(indexPath, DAEMON_STATUS_FILE), 'utf8')) as DaemonStatus;
  } catch {
    return undefined;
  }
}
