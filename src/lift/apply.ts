import type { AttributesAdapter } from '../attributes/adapter.js';
import type { RemoteContext } from '../context/remote-context.js';
import { LiftPass, type LiftableNames } from './pass.js';
import { liftableDays } from './plan.js';
import { emptyReport, type LiftOptions, type LiftReport } from './report.js';

// Unlock, then forget (the flag cleared, then the entries), so a crash leaves only entries the next pass removes.
// Only the buckets old enough to expire are read, a chunk at a time: a pass costs what it lifts, not what is protected.
export async function liftRemote(
  remote: RemoteContext,
  attributes: AttributesAdapter,
  options: LiftOptions,
): Promise<LiftReport> {
  const report = emptyReport(remote.id, options.dryRun);
  const days = await remote.index.listDays();
  const liftable = liftableDays(days, options.now, remote.windowMs, options.all);
  const names = await readLiftableNames(remote, liftable);
  const entries = names.total + (await scanNewerBuckets(remote, days, new Set(liftable), names.newestDay));
  const pass = new LiftPass(remote, attributes, options, report, names);
  try {
    await pass.run(liftable);
    return report;
  } finally {
    // What the index holds after the pass (or would, with dryRun): one entry per unit and bucket naming it.
    report.kept = entries - pass.forgotten;
  }
}

async function readLiftableNames(remote: RemoteContext, liftable: readonly string[]): Promise<LiftableNames> {
  const names: LiftableNames = { namesOf: new Map(), newestDay: new Map(), total: 0 };
  for (const day of liftable) {
    const inDay = await remote.index.names(day);
    names.namesOf.set(day, inDay);
    names.total += inDay.length;
    for (const name of inDay) names.newestDay.set(name, day);
  }
  return names;
}

// Counts the newer buckets' entries and points `newestDay` at the newest bucket naming each name; their names are
// streamed once, never held, and with nothing liftable only counted.
async function scanNewerBuckets(
  remote: RemoteContext,
  days: readonly string[],
  liftable: ReadonlySet<string>,
  newestDay: Map<string, string>,
): Promise<number> {
  let entries = 0;
  for (const day of days) {
    if (liftable.has(day)) continue;
    if (newestDay.size === 0) {
      entries += await remote.index.countNames(day);
      continue;
    }
    for await (const batch of remote.index.streamNames(day)) {
      entries += batch.length;
      for (const name of batch) if (newestDay.has(name)) newestDay.set(name, day);
    }
  }
  return entries;
}
