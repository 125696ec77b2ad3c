// Where a daemon's lock rounds spent their time, from its own debug lines (a run with --log-level debug --keep-logs
// keeps them as /tmp/xo-bench-<label>-daemon-N.log): per stage, the total, its share, and the cost per unit.
//   node bench/batch-stages.mjs DAEMON.log [--window FROM-TO]
// --window keeps the lines logged between FROM and TO epoch milliseconds (bench/run.mjs records each step's start,
// last write and last lock as `at` in its JSON).
// Stages, in the order a round runs them: reconcile (listings, jsons, chains, index reads: "reconciled N folder(s)"),
// then per lock batch: holds (the VMs a repair lift holds left out), entries (write-ahead entries written and synced), flag
// (the helper's runs, FLAG_LANES at once), complete (each unit examined again, its entry completed, its window record).
// Rounds overlap (since session 10: the next round is reconciled while one locks), so the stages add up to more than
// the time they took: "span" is from the first round's first folder to the last lock batch's end, and "overlap" the
// stage time that ran beside another stage.
import fs from 'node:fs';

const args = process.argv.slice(2);
const windowAt = args.indexOf('--window');
const [from, to] = windowAt >= 0 ? args.splice(windowAt, 2)[1].split('-').map(Number) : [-Infinity, Infinity];

for (const file of args) {
  const stages = { reconcile: 0, holds: 0, entries: 0, flag: 0, complete: 0 };
  let rounds = 0;
  let folders = 0;
  let batches = 0;
  let units = 0;
  let peakRssMb = 0;
  let first = Infinity;
  let last = -Infinity;
  for (const text of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!text.startsWith('{')) continue;
    const line = JSON.parse(text);
    const at = Date.parse(line.time);
    if (!(at >= from && at < to)) continue;
    if (typeof line.reconcileMs === 'number') {
      rounds++;
      folders += line.folders;
      stages.reconcile += line.reconcileMs;
      peakRssMb = Math.max(peakRssMb, line.rssMb ?? 0);
      // roundMs: from the round's first folder taken (logs before session 10: its reconcile alone).
      first = Math.min(first, at - (line.roundMs ?? line.reconcileMs));
    } else if (typeof line.chattrMs === 'number') {
      batches++;
      units += line.units;
      // confineMs: logs of versions that checked each folder real here.
      stages.holds += line.holdsMs ?? line.confineMs;
      stages.entries += line.entriesMs;
      stages.flag += line.chattrMs;
      stages.complete += line.completeMs;
      last = Math.max(last, at);
    }
  }
  const total = Object.values(stages).reduce((a, b) => a + b, 0);
  console.log(
    `${file}: ${rounds} rounds (${folders} folders), ${batches} lock batches, ${units} units` +
      ` (${(units / Math.max(1, batches)).toFixed(1)} a batch); largest RSS seen ${peakRssMb} MB\n` +
      '| stage | total ms | share | us per unit | ms per batch |\n| --- | ---: | ---: | ---: | ---: |',
  );
  for (const [stage, ms] of Object.entries(stages))
    console.log(
      `| ${stage} | ${ms} | ${((100 * ms) / Math.max(1, total)).toFixed(1)} % | ` +
        `${((1000 * ms) / Math.max(1, units)).toFixed(0)} | ${(ms / Math.max(1, batches)).toFixed(1)} |`,
    );
  console.log(`| all | ${total} | 100 % | ${((1000 * total) / Math.max(1, units)).toFixed(0)} | |`);
  const span = last > first ? last - first : 0;
  console.log(
    `| span (first round -> last batch) | ${span} | | ${((1000 * span) / Math.max(1, units)).toFixed(0)} | |\n` +
      `| overlap (stages - span) | ${Math.max(0, total - span)} | | | |\n`,
  );
}
