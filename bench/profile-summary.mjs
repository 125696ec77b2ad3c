// Summarises V8 .cpuprofile files written by `node bench/run.mjs --profile DIR`: self time per function and per
// source file, the share of time spent idle (waiting for the filesystem, the thread pool or the flag helper), and,
// for the project's own code, where the time went:
//   - "by own caller": each sample (native calls such as open or unlink included) charged to the nearest function of
//     dist/ on its stack, so `unlink` shows as the lift's forget, `open` as the walk that opened;
//   - "inclusive": each function of dist/ with every sample it is on the stack of (a stage: lockUnits, examine, ...).
//   node bench/profile-summary.mjs FILE.cpuprofile [--top N] [--window FROM-TO]
// --window keeps the samples between FROM and TO epoch milliseconds (as bench/run.mjs records its steps with
// --profile: `marks` in its JSON); the profile's start is taken from the epoch in its file name (the spawn).
import fs from 'node:fs';
import path from 'node:path';

const OWN = /\/dist\//;

function frameName(callFrame) {
  const { functionName, url, lineNumber } = callFrame;
  const where = url ? url.replace(/^file:\/\//, '').replace(/.*\/(dist|node_modules)\//, '$1/') : '';
  return `${functionName || '(anonymous)'} ${where}${where ? `:${lineNumber + 1}` : ''}`;
}

function summarise(file, top, window) {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // The spawn's epoch, from the name bench/run.mjs gives the file (<name>-<label>-<epoch ms>.cpuprofile).
  const spawnedAt = Number(/-(\d{13})\.cpuprofile$/.exec(file)?.[1]);
  const self = new Map();
  const deltas = profile.timeDeltas;
  let clock = profile.startTime;
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    clock += deltas[i] ?? 0;
    if (window) {
      const at = spawnedAt + (clock - profile.startTime) / 1000;
      if (!(at >= window.from && at < window.to)) continue;
    }
    const us = deltas[i + 1] ?? 0; // a sample stands for the time until the next one
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + us);
    total += us;
  }
  const perFunction = new Map();
  const perFile = new Map();
  const ownCaller = new Map();
  const inclusive = new Map();
  const add = (map, key, us) => map.set(key, (map.get(key) ?? 0) + us);
  for (const [id, us] of self) {
    const node = byId.get(id);
    const fn = frameName(node.callFrame);
    add(perFunction, fn, us);
    const where = fn.split(' ')[1] ?? '';
    add(perFile, where ? where.split(':')[0] : node.callFrame.functionName, us);
    // Up the stack: the nearest own frame, and every own frame once.
    const seen = new Set();
    let nearest;
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at).callFrame;
      if (!OWN.test(frame.url)) continue;
      const name = frameName(frame);
      nearest ??= name;
      seen.add(name);
    }
    const special = ['(idle)', '(garbage collector)', '(program)'].includes(node.callFrame.functionName);
    add(ownCaller, special ? node.callFrame.functionName : (nearest ?? '(outside dist/)'), us);
    for (const name of seen) add(inclusive, name, us);
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
  const span = window ? ` in ${new Date(window.from).toISOString()} .. ${new Date(window.to).toISOString()}` : '';
  console.log(
    `${path.basename(file)}: ${(total / 1000).toFixed(0)} ms sampled${span}\n` +
      `by function (self):\n${show(perFunction)}\nby file (self):\n${show(perFile)}\n` +
      `by own caller (self, native calls charged to the nearest dist/ function):\n${show(ownCaller)}\n` +
      `inclusive (dist/ functions, every sample they are on the stack of):\n${show(inclusive)}\n`,
  );
}

const args = process.argv.slice(2);
const topAt = args.indexOf('--top');
const top = topAt >= 0 ? Number(args.splice(topAt, 2)[1]) : 15;
const windowAt = args.indexOf('--window');
const window =
  windowAt >= 0
    ? (([from, to]) => ({ from: Number(from), to: Number(to) }))(args.splice(windowAt, 2)[1].split('-'))
    : undefined;
for (const file of args) summarise(file, top, window);
