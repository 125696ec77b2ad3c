import { writeFileAtomic } from '../atomic.js';
import type { CapFigures, CapLevel } from '../caps.js';
import type { ChainCost } from './chain-cost.js';

export interface MetricsInput {
  version: string;
  heartbeatMs: number;
  liftingFrozen: boolean;
  lockFailuresTotal: number;
  indexFailuresTotal: number;
  securityWarningsTotal: number;
  pendingRechecks: number;
  foldersBackingOff: number;
  coverageGaps: number;
  lastSuccessfulLockMs: number | undefined;
  lastReconcileMs: number | undefined;
  remotes: {
    id: string;
    healthy: boolean;
    protectedUnits: number | undefined;
    pendingUnits: number;
    liftFailuresTotal: number;
    heldVms: number;
    // Against maxWatchedFolders (undefined: the remote is not watched) and maxIndexEntries.
    watches?: CapFigures | undefined;
    indexEntries?: CapFigures;
    lastSuccessfulLiftMs: number | undefined;
    // The daemon's last count of restore points inside their window; undefined until the first count.
    restorePoints?: { protected: number; unprotected: number; chainUnknown: number };
    // The daemon's last count of what the remote holds beyond XO's retention; undefined until the first count.
    chainCost?: ChainCost;
  }[];
}

const PREFIX = 'xo_immutable_backups';

// Pure: the Prometheus text exposition format (node_exporter's textfile collector reads it). Timestamps are
// *_timestamp_seconds gauges, counters end in _total, as the Prometheus naming conventions ask.
export function renderMetrics(input: MetricsInput): string {
  const lines: string[] = [];
  const metric = (
    name: string,
    type: 'gauge' | 'counter',
    help: string,
    samples: [Record<string, string>, number | undefined][],
  ): void => {
    const present = samples.filter((s): s is [Record<string, string>, number] => s[1] !== undefined);
    if (present.length === 0) return;
    lines.push(`# HELP ${PREFIX}_${name} ${help}`, `# TYPE ${PREFIX}_${name} ${type}`);
    for (const [labels, value] of present) {
      const rendered = Object.entries(labels).map(
        ([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`,
      );
      lines.push(`${PREFIX}_${name}${rendered.length > 0 ? `{${rendered.join(',')}}` : ''} ${value}`);
    }
  };
  const seconds = (ms: number | undefined): number | undefined =>
    ms === undefined ? undefined : Math.floor(ms / 1000);
  metric('build_info', 'gauge', 'Version of the running daemon.', [[{ version: input.version }, 1]]);
  metric(
    'heartbeat_timestamp_seconds',
    'gauge',
    'When the daemon last wrote this file; stale means it is not running.',
    [[{}, seconds(input.heartbeatMs)]],
  );
  metric(
    'lifting_frozen',
    'gauge',
    '1 when the clock guard froze lifting (run lift --accept-clock once the clock is right).',
    [[{}, input.liftingFrozen ? 1 : 0]],
  );
  metric('lock_failures_total', 'counter', 'Units that could not be locked since the daemon started.', [
    [{}, input.lockFailuresTotal],
  ]);
  metric(
    'index_failures_total',
    'counter',
    'Units locked whose index entry could not be written since the daemon started.',
    [[{}, input.indexFailuresTotal]],
  );
  metric(
    'security_warnings_total',
    'counter',
    'Units refused (symlinks, hard links, outside the remote) since the daemon started.',
    [[{}, input.securityWarningsTotal]],
  );
  metric(
    'coverage_gaps',
    'gauge',
    'Units of completed backups in their window that are not locked: ' +
      'refused (symlinks, hard links) or failed and waiting for a retry.',
    [[{}, input.coverageGaps]],
  );
  metric(
    'pending_rechecks',
    'gauge',
    'Folders waiting to be looked at again (a failed lock, a json not yet complete).',
    [[{}, input.pendingRechecks]],
  );
  metric(
    'folders_backing_off',
    'gauge',
    'Folders that failed more than once in a row, tried again less and less often (up to every 10 minutes).',
    [[{}, input.foldersBackingOff]],
  );
  metric('last_lock_success_timestamp_seconds', 'gauge', 'When a lock batch last locked every unit it was given.', [
    [{}, seconds(input.lastSuccessfulLockMs)],
  ]);
  metric('last_reconcile_timestamp_seconds', 'gauge', 'When a backup folder was last reconciled without error.', [
    [{}, seconds(input.lastReconcileMs)],
  ]);
  metric(
    'remote_healthy',
    'gauge',
    // As the health check decides (daemon/health.ts): only an outage is 0, not a new remote XO has not set up.
    '0 while the remote is unavailable (its root missing or unreadable, or without its locked immutability.json: ' +
      "protection paused); 1 otherwise, a new remote waiting for XO's first write included.",
    input.remotes.map((r) => [{ remote: r.id }, r.healthy ? 1 : 0]),
  );
  metric(
    'protected_units',
    'gauge',
    'Index entries, counted at each write of this file (one per unit and day bucket naming it); ' +
      'missing while the index cannot be read.',
    input.remotes.map((r) => [{ remote: r.id }, r.protectedUnits]),
  );
  metric(
    'watched_folders',
    'gauge',
    'Folders of the remote with an inotify watch of their own.',
    input.remotes.map((r) => [{ remote: r.id }, r.watches?.count]),
  );
  metric(
    'watched_folders_cap',
    'gauge',
    'maxWatchedFolders: beyond it new folders are not watched and their backups are locked by the periodic rescan.',
    input.remotes.map((r) => [{ remote: r.id }, r.watches?.max]),
  );
  metric(
    'index_entries',
    'gauge',
    'Index entries of the remote, as counted against maxIndexEntries.',
    input.remotes.map((r) => [{ remote: r.id }, r.indexEntries?.count]),
  );
  metric(
    'index_entries_cap',
    'gauge',
    'maxIndexEntries: beyond it new units are locked without an entry (lift never unlocks them; rebuild-index).',
    input.remotes.map((r) => [{ remote: r.id }, r.indexEntries?.max]),
  );
  metric(
    'cap_level',
    'gauge',
    'Per remote and cap: 0 below 80% of it, 1 at 80% or more (a warning), 2 at the cap.',
    input.remotes.flatMap((r): [Record<string, string>, number | undefined][] => [
      [{ remote: r.id, cap: 'maxWatchedFolders' }, levelValue(r.watches?.level)],
      [{ remote: r.id, cap: 'maxIndexEntries' }, levelValue(r.indexEntries?.level)],
    ]),
  );
  metric(
    'held_vms',
    'gauge',
    'VMs whose backups a repair lift left unlocked (hold start) until their hold ends.',
    input.remotes.map((r) => [{ remote: r.id }, r.heldVms]),
  );
  metric(
    'pending_units',
    'gauge',
    'Units whose entry this daemon wrote ahead of a lock that did not complete (no identity recorded): ' +
      'lift never unlocks them (status lists them; verify checks them).',
    input.remotes.map((r) => [{ remote: r.id }, r.pendingUnits]),
  );
  metric(
    'lift_failures_total',
    'counter',
    'Units that could not be unlocked, or were refused, since the daemon started.',
    input.remotes.map((r) => [{ remote: r.id }, r.liftFailuresTotal]),
  );
  metric(
    'last_lift_success_timestamp_seconds',
    'gauge',
    'When a lift pass last ended without failure.',
    input.remotes.map((r) => [{ remote: r.id }, seconds(r.lastSuccessfulLiftMs)]),
  );
  metric(
    'restore_points_protected',
    'gauge',
    'Backups inside their window whose json, own units and whole VHD chain are locked and unchanged.',
    input.remotes.map((r) => [{ remote: r.id }, r.restorePoints?.protected]),
  );
  metric(
    'restore_points_unprotected',
    'gauge',
    'Backups inside their window that are not fully protected (a unit missing, unlocked or changed, ' +
      'a base past its lock, or a chain that cannot be read).',
    input.remotes.map((r) => [{ remote: r.id }, r.restorePoints?.unprotected]),
  );
  metric(
    'restore_points_chain_unknown',
    'gauge',
    'Of the unprotected: backups whose VHD chain cannot be read (encrypted remote), locked on the safe side.',
    input.remotes.map((r) => [{ remote: r.id }, r.restorePoints?.chainUnknown]),
  );
  metric(
    'beyond_retention_backups',
    'gauge',
    "Backups XO's retention removed (their json is gone) whose disks stay locked: XO's merges could not remove them.",
    input.remotes.map((r) => [{ remote: r.id }, r.chainCost?.beyondRetention.backups]),
  );
  metric(
    'beyond_retention_bytes',
    'gauge',
    "Bytes of the files of those disks: what the remote holds beyond XO's retention, at most (a merge keeps part).",
    input.remotes.map((r) => [{ remote: r.id }, r.chainCost?.beyondRetention.bytes]),
  );
  metric(
    'unfreed_vdi_folders',
    'gauge',
    'VDI folders whose chains cannot be freed while backups keep coming (encrypted remote read without its key, ' +
      'protectChains on): every VHD stays locked while the newest backup is in its window.',
    input.remotes.map((r) => [{ remote: r.id }, r.chainCost?.unfreedVdis.length]),
  );
  metric(
    'unfreed_vdi_leftover_bytes',
    'gauge',
    "Per VDI folder never freed: bytes of the disks of backups XO's retention removed that stay locked there.",
    input.remotes.flatMap((r) =>
      (r.chainCost?.unfreedVdis ?? []).map((v): [Record<string, string>, number] => [
        { remote: r.id, vm: v.vm, vdi: v.vdi },
        v.leftoverBytes,
      ]),
    ),
  );
  return `${lines.join('\n')}\n`;
}

function levelValue(level: CapLevel | undefined): number | undefined {
  if (level === undefined) return undefined;
  return level === 'reached' ? 2 : level === 'near' ? 1 : 0;
}

// Atomic (temp file and rename in the same folder): node_exporter never reads half a file.
export async function writeMetricsFile(file: string, content: string): Promise<void> {
  await writeFileAtomic(file, content, 0o644);
}
