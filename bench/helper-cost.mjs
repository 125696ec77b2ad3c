// The flag helper's cost per batch, in the batches the daemon sends: one backup's 5 paths (an idle lock), the full
// proof's read of one VM folder (5 paths, `get`), and a burst of 25,000 files in batches of 1,786 (the burst's lock
// batches) then a lift of them in chunks of 4,096. Files are written and synced first, so what is measured is the
// helper's own cost (start, walks, pipes), not the disk's write-back.
//   node bench/helper-cost.mjs [--dist DIR] [--files N] [--samples N]
// --dist: the build to measure (default ./dist); compare two builds back to back, e.g. a copy of main's dist.
// As root, on a local ext4 /tmp. Everything locked is unlocked and removed at the end, also on failure.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : fallback;
};
const dist = path.resolve(option('--dist', 'dist'));
const files = Number(option('--files', '25000'));
const samples = Number(option('--samples', '200'));
const BURST_BATCH = 1786;
const LIFT_CHUNK = 4096;
const PER_FOLDER = 5;

const { IoctlAdapter } = await import(pathToFileURL(path.join(dist, 'attributes', 'ioctl.js')).href);
const base = fs.mkdtempSync(path.join(os.tmpdir(), 'xo-bench-helper-'));
const root = path.join(base, 'remote');
const within = { root, realRoot: root };
const folders = [];
for (let f = 0; f < files / PER_FOLDER; f++) {
  const folder = path.join(root, 'xo-vm-backups', `vm-${f}`);
  fs.mkdirSync(folder, { recursive: true });
  const paths = [];
  for (let i = 0; i < PER_FOLDER; i++) {
    const file = path.join(folder, i === 0 ? '20260101T000000Z.json' : `disk-${i}.vhd`);
    fs.writeFileSync(file, 'x');
    paths.push(file);
  }
  folders.push(paths);
}
execFileSync('sync');
const all = folders.flat();
const attributes = new IoctlAdapter();

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
async function timed(act) {
  const start = process.hrtime.bigint();
  const outcomes = await act();
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  const list = outcomes instanceof Map ? [...outcomes.values()] : outcomes;
  if (list.some((o) => (o instanceof Object ? o.status !== 'ok' : o === undefined)))
    throw new Error('a path was not acted on');
  return ms;
}
const targets = (paths) => paths.map((p) => ({ path: p, recursive: false }));

try {
  const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  // One warm-up call: the first start of a long-lived helper is paid once per daemon.
  await attributes.setImmutable(within, targets(folders[0]), false);
  const idleLock = [];
  const idleUnlock = [];
  const proofRead = [];
  for (let s = 0; s < samples; s++) {
    const paths = folders[s % folders.length];
    idleLock.push(await timed(() => attributes.setImmutable(within, targets(paths), true)));
    proofRead.push(await timed(() => attributes.isImmutable(within, paths)));
    idleUnlock.push(await timed(() => attributes.setImmutable(within, targets(paths), false)));
  }
  let burstMs = 0;
  for (let start = 0; start < all.length; start += BURST_BATCH)
    burstMs += await timed(() => attributes.setImmutable(within, targets(all.slice(start, start + BURST_BATCH)), true));
  let liftMs = 0;
  for (let start = 0; start < all.length; start += LIFT_CHUNK)
    liftMs += await timed(() => attributes.setImmutable(within, targets(all.slice(start, start + LIFT_CHUNK)), false));
  const fmt = (ms) => ms.toFixed(1);
  console.log(`${dist}, ${all.length} files, load average ${load} at start`);
  console.log('| batch | median of ' + samples + ' |\n| --- | ---: |');
  console.log(`| idle lock, 5 paths | ${fmt(median(idleLock))} ms |`);
  console.log(`| idle unlock, 5 paths | ${fmt(median(idleUnlock))} ms |`);
  console.log(`| proof read of one VM folder, 5 paths | ${fmt(median(proofRead))} ms |`);
  console.log(
    `| burst lock, ${all.length} in batches of ${BURST_BATCH} | ${fmt(burstMs)} ms in all, ` +
      `${fmt((1000 * burstMs) / all.length)} us a path |`,
  );
  console.log(
    `| lift, ${all.length} in chunks of ${LIFT_CHUNK} | ${fmt(liftMs)} ms in all, ` +
      `${fmt((1000 * liftMs) / all.length)} us a path |`,
  );
} finally {
  await attributes.close?.();
  execFileSync('chattr', ['-R', '-i', base]);
  fs.rmSync(base, { recursive: true, force: true });
}
