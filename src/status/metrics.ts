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

const ofType =
  (type: MetricDefinition['type']) =>
  (name: string, help: string, samples: MetricDefinition['samples']): MetricDefinition => ({
    name,
    type,
    help,
    samples,
  });
const gauge = ofType('gauge');
const counter = ofType('counter');
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
  gauge('build_info', 'Version of the running daemon.', (input) => [[{ version: input.version }, 1]]),
  gauge(
    'heartbeat_timestamp_seconds',
    'When the daemon last wrote this file; stale means it is not running.',
    daemonWide((i) => seconds(i.heartbeatMs)),
  ),
  gauge(
    'lifting_frozen',
    '1 when the clock guard froze lifting (run lift --accept-clock once the clock is right).',
    daemonWide((i) => (i.liftingFrozen ? 1 : 0)),
  ),
  counter(
    'lock_failures_total',
    'Units that could not be locked since the daemon started.',
    daemonWide((i) => i.lockFailuresTotal),
  ),
  counter(
    'index_failures_total',
    'Units locked whose index entry could not be written since the daemon started.',
    daemonWide((i) => i.indexFailuresTotal),
  ),
  counter(
    'security_warnings_total',
    'Security warnings since the daemon started: units refused (symlinks, outside the remote), units locked with ' +
      'what XO never writes or a second hard link, repair-lift holds, entries planted at immutability.json.',
    daemonWide((i) => i.securityWarningsTotal),
  ),
  gauge(
    'coverage_gaps',
    'Units of completed backups in their window that are not locked: ' +
      'refused (symlinks, folders where XO writes made links) or failed and waiting for a retry.',
    daemonWide((i) => i.coverageGaps),
  ),
  gauge(
    'pending_rechecks',
    'Folders waiting to be looked at again (a failed lock, a json not yet complete).',
    daemonWide((i) => i.pendingRechecks),
  ),
  gauge(
    'folders_backing_off',
    'Folders that failed more than once in a row, tried again less and less often (up to every 10 minutes).',
    daemonWide((i) => i.foldersBackingOff),
  ),
  gauge(
    'last_lock_success_timestamp_seconds',
    'When a lock batch last locked every unit it was given.',
    daemonWide((i) => seconds(i.lastSuccessfulLockMs)),
  ),
  gauge(
    'last_reconcile_timestamp_seconds',
    'When a backup folder was last reconciled without error.',
    daemonWide((i) => seconds(i.lastReconcileMs)),
  ),
  // As the health check decides (daemon/health.ts): only an outage is 0, not a new remote XO has not set up.
  gauge(
    'remote_healthy',
    '0 while the remote is unavailable (its root missing or unreadable, or without its locked immutability.json: ' +
      "protection paused); 1 otherwise, a new remote waiting for XO's first write included.",
    perRemote((r) => (r.healthy ? 1 : 0)),
  ),
  gauge(
    'protected_units',
    'Index entries, counted at each write of this file (one per unit and day bucket naming it); ' +
      'missing while the index cannot be read.',
    perRemote((r) => r.protectedUnits),
  ),
  gauge(
    'watched_folders',
    'Folders of the remote with an inotify watch of their own.',
    perRemote((r) => r.watches?.count),
  ),
  gauge(
    'watched_folders_cap',
    'maxWatchedFolders: beyond it new folders are not watched and their backups are locked by the periodic rescan.',
    perRemote((r) => r.watches?.max),
  ),
  gauge(
    'index_entries',
    'Index entries of the remote, as counted against maxIndexEntries.',
    perRemote((r) => r.indexEntries?.count),
  ),
  gauge(
    'index_entries_cap',
    'maxIndexEntries: beyond it new units are locked without an entry (lift never unlocks them; rebuild-index).',
    perRemote((r) => r.indexEntries?.max),
  ),
  gauge('cap_level', 'Per remote and cap: 0 below 80% of it, 1 at 80% or more (a warning), 2 at the cap.', (input) =>
    input.remotes.flatMap((r): Sample[] => [
      [{ remote: r.id, cap: 'maxWatchedFolders' }, levelValue(r.watches?.level)],
      [{ remote: r.id, cap: 'maxIndexEntries' }, levelValue(r.indexEntries?.level)],
    ]),
  ),
  gauge(
    'held_vms',
    'VMs whose backups a repair lift left unlocked (hold start) until their hold ends.',
    perRemote((r) => r.heldVms),
  ),
  gauge(
    'pending_units',
    'Units whose entry this daemon wrote ahead of a lock that did not complete (no identity recorded): ' +
      'lift never unlocks them (status lists them; verify checks them).',
    perRemote((r) => r.pendingUnits),
  ),
  counter(
    'lift_failures_total',
    'Units that could not be unlocked, or were refused, since the daemon started.',
    perRemote((r) => r.liftFailuresTotal),
  ),
  gauge(
    'last_lift_success_timestamp_seconds',
    'When a lift pass last ended without failure.',
    perRemote((r) => seconds(r.lastSuccessfulLiftMs)),
  ),
  gauge(
    'restore_points_protected',
    'Backups inside their window whose json, own units and whole VHD chain are locked and unchanged.',
    perRemote((r) => r.restorePoints?.protected),
  ),
  gauge(
    'restore_points_unprotected',
    'Backups inside their window that are not fully protected (a unit missing, unlocked or changed, ' +
      'a base past its lock, or a chain that cannot be read).',
    perRemote((r) => r.restorePoints?.unprotected),
  ),
  gauge(
    'restore_points_chain_unknown',
    'Of the unprotected: backups whose VHD chain cannot be read (encrypted remote), locked on the safe side.',
    perRemote((r) => r.restorePoints?.chainUnknown),
  ),
  gauge(
    'beyond_retention_backups',
    "Backups XO's retention removed (their json is gone) whose disks stay locked: XO's merges could not remove them.",
    perRemote((r) => r.chainCost?.beyondRetention.backups),
  ),
  gauge(
    'beyond_retention_bytes',
    "Bytes of the files of those disks: what the remote holds beyond XO's retention, at most (a merge keeps part).",
    perRemote((r) => r.chainCost?.beyondRetention.bytes),
  ),
  gauge(
    'unfreed_vdi_folders',
    'VDI folders whose chains cannot be freed while backups keep coming (encrypted remote read without its key, ' +
      'protectChains on): every VHD stays locked while the newest backup is in its window.',
    perRemote((r) => r.chainCost?.unfreedVdis.length),
  ),
  gauge(
    'unfreed_vdi_leftover_bytes',
    "Per VDI folder never freed: bytes of the disks of backups XO's retention removed that stay locked there.",
    (input) =>
      input.remotes.flatMap((r) =>
        (r.chainCost?.unfreedVdis ?? []).map((v): Sample => [{ remote: r.id, vm: v.vm, vdi: v.vdi }, v.leftoverBytes]),
      ),
  ),
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
