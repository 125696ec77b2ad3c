// Summarises V8 .cpuprofile files written by `node bench/run.mjs --profile DIR`: self time per function and per
// source file, and the share of time spent idle (waiting for the filesystem, the thread pool or chattr).
//   node bench/profile-summary.mjs FILE.cpuprofile [--top N]
import fs from 'node:fs';
import path from 'node:path';

function summarise(file, top) {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const deltas = profile.timeDeltas;
  for (let i = 0; i < profile.samples.length; i++)
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + (deltas[i] ?? 0));
  const total = deltas.reduce((a, b) => a + b, 0);
  const perFunction = new Map();
  const perFile = new Map();
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id).callFrame;
    const where = url ? url.replace(/^file:\/\//, '').replace(/.*\/(dist|node_modules)\//, '$1/') : '';
    const fn = `${functionName || '(anonymous)'} ${where}${where ? `:${lineNumber + 1}` : ''}`;
    perFunction.set(fn, (perFunction.get(fn) ?? 0) + us);
    const bucket = where ? where.split(':')[0] : functionName;
    perFile.set(bucket, (perFile.get(bucket) ?? 0) + us);
  }
  const show = (map) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(
        ([k, us]) =>
          `  ${(us / 1000).toFixed(0).padStart(7)} ms ${((100 * us) / total).toFixed(1).padStart(5)} %  ${k}`,
      )
      .join('\n');
  console.log(
    `${path.basename(file)}: ${(total / 1000).toFixed(0)} ms sampled\nby function:\n${show(perFunction)}\nby file:\n${show(perFile)}\n`,
  );
}

const args = process.argv.slice(2);
const topAt = args.indexOf('--top');
const top = topAt >= 0 ? Number(args.splice(topAt, 2)[1]) : 15;
for (const file of args) summarise(file, top);
