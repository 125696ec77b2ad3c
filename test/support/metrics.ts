import { renderMetrics, type MetricsInput } from '../../src/status/metrics.js';

// Every field set, so renderMetrics writes every family it can: what the daemon writes once it has locked, lifted and
// counted restore points (test/contrib/metrics-file.test.ts checks that a real daemon does write each).
export const EVERY_METRIC: MetricsInput = {
  version: '0.0.0',
  heartbeatMs: 1_700_000_000_000,
  liftingFrozen: false,
  lockFailuresTotal: 0,
  indexFailuresTotal: 0,
  securityWarningsTotal: 0,
  pendingRechecks: 0,
  foldersBackingOff: 0,
  coverageGaps: 0,
  lastSuccessfulLockMs: 1_700_000_000_000,
  lastReconcileMs: 1_700_000_000_000,
  remotes: [
    {
      id: 'r',
      healthy: true,
      protectedUnits: 1,
      pendingUnits: 0,
      liftFailuresTotal: 0,
      heldVms: 0,
      watches: { count: 1, max: 100, level: 'below' },
      indexEntries: { count: 1, max: 100, level: 'below' },
      lastSuccessfulLiftMs: 1_700_000_000_000,
      restorePoints: { protected: 1, unprotected: 0, chainUnknown: 0 },
      // Per-folder series (unfreed_vdi_leftover_bytes) only on an encrypted remote: test/status/chain-cost-status.test.ts.
      chainCost: { chainsByName: false, beyondRetention: { backups: 0, units: 0, bytes: 0 }, unfreedVdis: [] },
    },
  ],
};

// Metric family -> the label names its samples carry, from a file in the text exposition format.
export function metricFamilies(text: string): Map<string, Set<string>> {
  const families = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$/.exec(line);
    if (match === null) throw new Error(`not a sample line: ${line}`);
    const labels = families.get(match[1]!) ?? new Set<string>();
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g)) labels.add(pair[1]!);
    families.set(match[1]!, labels);
  }
  return families;
}

// What src/status/metrics.ts can write, with each family's labels.
export function daemonFamilies(): Map<string, Set<string>> {
  return metricFamilies(renderMetrics(EVERY_METRIC));
}

// The daemon's metric names a file (rules, a dashboard) mentions.
export function daemonMetricNames(text: string): string[] {
  return [...new Set(text.match(/\bxo_immutable_backups_[a-z0-9_]+/g) ?? [])].sort();
}
