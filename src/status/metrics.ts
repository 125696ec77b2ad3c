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

type Labels = Record<string, string>;
type Sample = [Labels, number | undefined];
type Remote = MetricsInput['remotes'][number];

// One metric of the file: a sample whose value is undefined is left out, and a metric without samples altogether.
interface MetricDefinition {
  name: string;
  type: 'gauge' | 'counter';
  help: string;
  samples: (input: MetricsInput) => Sample[];
}

const seconds = (ms: number | undefined): number | undefined => (ms === undefined ? undefined : Math.floor(ms / 1000));
const daemonWide =
  (value: (input: MetricsInput) => number | undefined) =>
  (input: MetricsInput): Sample[] => [[{}, value(input)]];
const perRemote =
  (value: (remote: Remote) => number | undefined) =>
  (input: MetricsInput): Sample[] =>
    input.remotes.map((r) => [{ remote: r.id }, value(r)]);

// Every metric the daemon writes, in the order written. Timestamps are *_timestamp_seconds gauges, counters end in
// _total, as the Prometheus naming conventions ask.
export const METRICS: readonly MetricDefinition[] = [
  {
    name: 'build_info',
    type: 'gauge',
    help: 'Version of the running daemon.',
    samples: (input) => [[{ version: input.version }, 1]],
  },
  {
    name: 'heartbeat_timestamp_seconds',
    type: 'gauge',
    help: 'When the daemon last wrote this file; stale means it is not running.',
    samples: daemonWide((i) => seconds(i.heartbeatMs)),
  },
  {
    name: 'lifting_frozen',
    type: 'gauge',
    help: '1 when the clock guard froze lifting (run lift --accept-clock once the clock is right).',
    samples: daemonWide((i) => (i.liftingFrozen ? 1 : 0)),
  },
  {
    name: 'lock_failures_total',
    type: 'counter',
    help: 'Units that could not be locked since the daemon started.',
    samples: daemonWide((i) => i.lockFailuresTotal),
  },
  {
    name: 'index_failures_total',
    type: 'counter',
    help: 'Units locked whose index entry could not be written since the daemon started.',
    samples: daemonWide((i) => i.indexFailuresTotal),
  },
  {
    name: 'security_warnings_total',
    type: 'counter',
    help: 'Units refused (symlinks, hard links, outside the remote) since the daemon started.',
    samples: daemonWide((i) => i.securityWarningsTotal),
  },
  {
    name: 'coverage_gaps',
    type: 'gauge',
    help:
      'Units of completed backups in their window that are not locked: ' +
      'refused (symlinks, hard links) or failed and waiting for a retry.',
    samples: daemonWide((i) => i.coverageGaps),
  },
  {
    name: 'pending_rechecks',
    type: 'gauge',
    help: 'Folders waiting to be looked at again (a failed lock, a json not yet complete).',
    samples: daemonWide((i) => i.pendingRechecks),
  },
  {
    name: 'folders_backing_off',
    type: 'gauge',
    help: 'Folders that failed more than once in a row, tried again less and less often (up to every 10 minutes).',
    samples: daemonWide((i) => i.foldersBackingOff),
  },
  {
    name: 'last_lock_success_timestamp_seconds',
    type: 'gauge',
    help: 'When a lock batch last locked every unit it was given.',
    samples: daemonWide((i) => seconds(i.lastSuccessfulLockMs)),
  },
  {
    name: 'last_reconcile_timestamp_seconds',
    type: 'gauge',
    help: 'When a backup folder was last reconciled without error.',
    samples: daemonWide((i) => seconds(i.lastReconcileMs)),
  },
  {
    name: 'remote_healthy',
    type: 'gauge',
    // As the health check decides (daemon/health.ts): only an outage is 0, not a new remote XO has not set up.
    help:
      '0 while the remote is unavailable (its root missing or unreadable, or without its locked immutability.json: ' +
      "protection paused); 1 otherwise, a new remote waiting for XO's first write included.",
    samples: perRemote((r) => (r.healthy ? 1 : 0)),
  },
  {
    name: 'protected_units',
    type: 'gauge',
    help:
      'Index entries, counted at each write of this file (one per unit and day bucket naming it); ' +
      'missing while the index cannot be read.',
    samples: perRemote((r) => r.protectedUnits),
  },
  {
    name: 'watched_folders',
    type: 'gauge',
    help: 'Folders of the remote with an inotify watch of their own.',
    samples: perRemote((r) => r.watches?.count),
  },
  {
    name: 'watched_folders_cap',
    type: 'gauge',
    help: 'maxWatchedFolders: beyond it new folders are not watched and their backups are locked by the periodic rescan.',
    samples: perRemote((r) => r.watches?.max),
  },
  {
    name: 'index_entries',
    type: 'gauge',
    help: 'Index entries of the remote, as counted against maxIndexEntries.',
    samples: perRemote((r) => r.indexEntries?.count),
  },
  {
    name: 'index_entries_cap',
    type: 'gauge',
    help: 'maxIndexEntries: beyond it new units are locked without an entry (lift never unlocks them; rebuild-index).',
    samples: perRemote((r) => r.indexEntries?.max),
  },
  {
    name: 'cap_level',
    type: 'gauge',
    help: 'Per remote and cap: 0 below 80% of it, 1 at 80% or more (a warning), 2 at the cap.',
    samples: (input) =>
      input.remotes.flatMap((r): Sample[] => [
        [{ remote: r.id, cap: 'maxWatchedFolders' }, levelValue(r.watches?.level)],
        [{ remote: r.id, cap: 'maxIndexEntries' }, levelValue(r.indexEntries?.level)],
      ]),
  },
  {
    name: 'held_vms',
    type: 'gauge',
    help: 'VMs whose backups a repair lift left unlocked (hold start) until their hold ends.',
    samples: perRemote((r) => r.heldVms),
  },
  {
    name: 'pending_units',
    type: 'gauge',
    help:
      'Units whose entry this daemon wrote ahead of a lock that did not complete (no identity recorded): ' +
      'lift never unlocks them (status lists them; verify checks them).',
    samples: perRemote((r) => r.pendingUnits),
  },
  {
    name: 'lift_failures_total',
    type: 'counter',
    help: 'Units that could not be unlocked, or were refused, since the daemon started.',
    samples: perRemote((r) => r.liftFailuresTotal),
  },
  {
    name: 'last_lift_success_timestamp_seconds',
    type: 'gauge',
    help: 'When a lift pass last ended without failure.',
    samples: perRemote((r) => seconds(r.lastSuccessfulLiftMs)),
  },
  {
    name: 'restore_points_protected',
    type: 'gauge',
    help: 'Backups inside their window whose json, own units and whole VHD chain are locked and unchanged.',
    samples: perRemote((r) => r.restorePoints?.protected),
  },
  {
    name: 'restore_points_unprotected',
    type: 'gauge',
    help:
      'Backups inside their window that are not fully protected (a unit missing, unlocked or changed, ' +
      'a base past its lock, or a chain that cannot be read).',
    samples: perRemote((r) => r.restorePoints?.unprotected),
  },
  {
    name: 'restore_points_chain_unknown',
    type: 'gauge',
    help: 'Of the unprotected: backups whose VHD chain cannot be read (encrypted remote), locked on the safe side.',
    samples: perRemote((r) => r.restorePoints?.chainUnknown),
  },
  {
    name: 'beyond_retention_backups',
    type: 'gauge',
    help: "Backups XO's retention removed (their json is gone) whose disks stay locked: XO's merges could not remove them.",
    samples: perRemote((r) => r.chainCost?.beyondRetention.backups),
  },
  {
    name: 'beyond_retention_bytes',
    type: 'gauge',
    help: "Bytes of the files of those disks: what the remote holds beyond XO's retention, at most (a merge keeps part).",
    samples: perRemote((r) => r.chainCost?.beyondRetention.bytes),
  },
  {
    name: 'unfreed_vdi_folders',
    type: 'gauge',
    help:
      'VDI folders whose chains cannot be freed while backups keep coming (encrypted remote read without its key, ' +
      'protectChains on): every VHD stays locked while the newest backup is in its window.',
    samples: perRemote((r) => r.chainCost?.unfreedVdis.length),
  },
  {
    name: 'unfreed_vdi_leftover_bytes',
    type: 'gauge',
    help: "Per VDI folder never freed: bytes of the disks of backups XO's retention removed that stay locked there.",
    samples: (input) =>
      input.remotes.flatMap((r) =>
        (r.chainCost?.unfreedVdis ?? []).map((v): Sample => [{ remote: r.id, vm: v.vm, vdi: v.vdi }, v.leftoverBytes]),
      ),
  },
];

// Pure: the Prometheus text exposition format (node_exporter's textfile collector reads it).
export function renderMetrics(input: MetricsInput): string {
  return `${METRICS.flatMap((metric) => renderMetric(metric, metric.samples(input))).join('\n')}\n`;
}

function renderMetric(metric: MetricDefinition, samples: Sample[]): string[] {
  const present = samples.filter((s): s is [Labels, number] => s[1] !== undefined);
  if (present.length === 0) return [];
  const name = `${PREFIX}_${metric.name}`;
  return [
    `# HELP ${name} ${metric.help}`,
    `# TYPE ${name} ${metric.type}`,
    ...present.map(([labels, value]) => {
      const rendered = Object.entries(labels).map(
        ([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`,
      );
      return `${name}${rendered.length > 0 ? `{${rendered.join(',')}}` : ''} ${value}`;
    }),
  ];
}

function levelValue(level: CapLevel | undefined): number | undefined {
  if (level === undefined) return undefined;
  return level === 'reached' ? 2 : level === 'near' ? 1 : 0;
}

// Atomic (temp file and rename in the same folder): node_exporter never reads half a file.
export async function writeMetricsFile(file: string, content: string): Promise<void> {
  await writeFileAtomic(file, content, 0o644);
}
