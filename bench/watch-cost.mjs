// What watching a remote costs: time to ready, peak RSS and RSS after GC, one fresh child process per strategy.
//   node bench/watch-cost.mjs [--vms N] [--retained K] [--all]
// Builds (or reuses) a synthetic remote under /tmp/xo-watch-bench-<N>-<K>/remote, prints a Markdown table and writes
// bench/results/watch-cost-<N>-<K>.json. Never makes anything immutable: the remote is plain files, safe to rm -rf.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { watch as chokidarWatch } from 'chokidar';
import { RemoteWatcher } from '../dist/watcher/watcher.js';
import { createLogger } from '../dist/log/logger.js';

const SELF = fileURLToPath(import.meta.url);
const BENCH_DIR = path.dirname(SELF);
const SHAPE_VERSION = 1;
const DISKS_PER_VM = 4;
const WHOLE_TREE_LIMIT = 20000; // N*K above which chokidar-whole-tree is skipped unless --all
const STRATEGIES = ['baseline', 'ours', 'chokidar-vm-folders', 'chokidar-whole-tree', 'fs-watch-per-folder'];

function parseArgs(argv) {
  const args = { vms: 5000, retained: 1, all: false, child: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--vms') args.vms = Number(argv[++i]);
    else if (a === '--retained') args.retained = Number(argv[++i]);
    else if (a === '--all') args.all = true;
    else if (a === '--child') args.child = argv[++i];
    else throw new Error(`unknown argument ${a}`);
  }
  if (!Number.isInteger(args.vms) || args.vms < 1) throw new Error('--vms must be a positive integer');
  if (!Number.isInteger(args.retained) || args.retained < 1) throw new Error('--retained must be a positive integer');
  if (args.child !== undefined && !STRATEGIES.includes(args.child)) throw new Error(`unknown strategy ${args.child}`);
  return args;
}

const benchDir = (n, k) => `/tmp/xo-watch-bench-${n}-${k}`;
const remoteRoot = (n, k) => path.join(benchDir(n, k), 'remote');

// Deterministic uuid-looking names.
function fakeUuid(a, b) {
  const hex = (x, w) => (x >>> 0).toString(16).padStart(w, '0').slice(-w);
  return `${hex(a, 8)}-${hex(b, 4)}-4${hex(a * 7 + b, 3)}-8${hex(b * 13 + a, 3)}-${hex(a, 6)}${hex(b, 6)}`;
}
const vmName = (i) => fakeUuid(0x10000000 + i, 0);

// 20261122T061500Z, one day earlier per retained backup.
function datetime(index) {
  const d = new Date(Date.UTC(2026, 10, 22, 6, 15, 0) - index * 86400_000);
  return d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}

function buildRemote(n, k) {
  const dir = benchDir(n, k);
  const marker = path.join(dir, 'shape.json');
  const shape = { version: SHAPE_VERSION, vms: n, retained: k, disksPerVm: DISKS_PER_VM };
  try {
    if (JSON.stringify(JSON.parse(fs.readFileSync(marker, 'utf8'))) === JSON.stringify(shape)) {
      console.error(`reusing ${remoteRoot(n, k)}`);
      return;
    }
  } catch {
    // no marker: (re)build
  }
  const started = process.hrtime.bigint();
  fs.rmSync(dir, { recursive: true, force: true });
  const vmTree = path.join(remoteRoot(n, k), 'xo-vm-backups');
  fs.mkdirSync(vmTree, { recursive: true });
  const jobId = fakeUuid(0xabcdef, 1);
  const cache = zlib.gzipSync(JSON.stringify({ synthetic: true }));
  const vhd = Buffer.from('conectix'); // a few bytes; only names matter to watchers
  let files = 0;
  for (let v = 0; v < n; v++) {
    const vm = vmName(v);
    const vmDir = path.join(vmTree, vm);
    const vdiDirs = [];
    for (let d = 0; d < DISKS_PER_VM; d++) {
      const vdiDir = path.join(vmDir, 'vdis', jobId, fakeUuid(0x20000000 + v, d + 1));
      fs.mkdirSync(vdiDir, { recursive: true });
      vdiDirs.push(vdiDir);
    }
    for (let r = 0; r < k; r++) {
      const dt = datetime(r);
      const vhds = {};
      for (const vdiDir of vdiDirs) {
        fs.writeFileSync(path.join(vdiDir, `${dt}.vhd`), vhd);
        vhds[path.basename(vdiDir)] = path.relative(vmDir, path.join(vdiDir, `${dt}.vhd`));
        files++;
      }
      fs.writeFileSync(
        path.join(vmDir, `${dt}.json`),
        JSON.stringify({ mode: 'delta', jobId, timestamp: dt, vm: { uuid: vm }, vhds }),
      );
      files++;
    }
    fs.writeFileSync(path.join(vmDir, 'cache.json.gz'), cache);
    files++;
  }
  fs.writeFileSync(marker, JSON.stringify(shape));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.error(
    `built ${remoteRoot(n, k)}: ${n} VM folders, ${files} files, ${n * (2 + DISKS_PER_VM)} sub-folders in ${seconds.toFixed(1)} s`,
  );
}

// ---------------------------------------------------------------- child side

function procStatusKb(field) {
  const m = fs.readFileSync('/proc/self/status', 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  return m ? Number(m[1]) : NaN;
}

// inotify watches held by this process (all fs.watch calls share libuv's one inotify fd).
function inotifyWatches() {
  let count = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    let target;
    try {
      target = fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    if (target !== 'anon_inode:inotify') continue;
    try {
      count += fs
        .readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('inotify wd:')).length;
    } catch {
      // fd went away
    }
  }
  return count;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => Number(process.hrtime.bigint()) / 1e6; // ms

async function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function runChild(strategy, n, k) {
  const root = remoteRoot(n, k);
  const vmTree = path.join(root, 'xo-vm-backups');
  const result = { strategy };
  let close = async () => {};
  let detect; // ours only: confirm a change is seen
  const t0 = now();

  if (strategy === 'baseline') {
    // Modules are imported statically at the top of this file, as in every other child: this is Node + modules.
  } else if (strategy === 'ours') {
    let leaves = 0;
    const leafListeners = new Set();
    let reachedN;
    const allLeaves = new Promise((resolve) => (reachedN = resolve));
    const watcher = new RemoteWatcher(root, createLogger('silent'), (event) => {
      if (event.type === 'leaf-added' && ++leaves === n) reachedN();
      for (const l of leafListeners) l(event);
    });
    await watcher.start();
    result.chokidarReadyS = (now() - t0) / 1000;
    try {
      await withTimeout(allLeaves, 300_000, 'waiting for all leaves');
    } catch (err) {
      result.error = `${err.message}; got ${leaves} of ${n} leaves`;
    }
    result.leaves = leaves;
    close = () => watcher.close();
    detect = async () => {
      const vmDir = path.join(vmTree, vmName(Math.floor(n / 2)));
      const name = `${datetime(-1)}.json`; // a datetime no retained backup uses
      const file = path.join(vmDir, name);
      const seen = new Promise((resolve) =>
        leafListeners.add((event) => {
          if (event.type === 'leaf-changed' && event.leaf.path === vmDir && event.file === name) resolve(now());
        }),
      );
      const t = now();
      fs.writeFileSync(file, JSON.stringify({ mode: 'delta', synthetic: true }));
      try {
        result.changeDetectedMs = Number(((await withTimeout(seen, 10_000, 'leaf-changed')) - t).toFixed(2));
      } catch (err) {
        result.changeDetectedMs = null;
        result.changeError = err.message;
      } finally {
        fs.rmSync(file, { force: true }); // keep the remote's shape for reuse
      }
    };
  } else if (strategy === 'chokidar-vm-folders' || strategy === 'chokidar-whole-tree') {
    const target = strategy === 'chokidar-vm-folders' ? vmTree : root;
    const options = strategy === 'chokidar-vm-folders' ? { depth: 1, ignoreInitial: true } : { ignoreInitial: true };
    const watcher = chokidarWatch(target, options);
    let errors = 0;
    watcher.on('error', () => errors++);
    await withTimeout(new Promise((resolve) => watcher.once('ready', resolve)), 1_800_000, 'chokidar ready');
    if (errors) result.errors = errors;
    close = () => watcher.close();
  } else if (strategy === 'fs-watch-per-folder') {
    const watches = [];
    for (const entry of fs.readdirSync(vmTree, { withFileTypes: true })) {
      if (entry.isDirectory()) watches.push(fs.watch(path.join(vmTree, entry.name), { persistent: true }, () => {}));
    }
    result.watched = watches.length;
    close = async () => watches.forEach((w) => w.close());
  }

  result.readyS = strategy === 'baseline' ? null : (now() - t0) / 1000;
  await sleep(500); // let trailing work settle before reading memory
  result.peakRssMb = procStatusKb('VmHWM') / 1024;
  if (typeof global.gc === 'function') {
    global.gc();
    await sleep(50);
    global.gc();
    result.gc = true;
  } else {
    result.gc = false;
  }
  result.rssAfterGcMb = procStatusKb('VmRSS') / 1024;
  result.heapUsedMb = process.memoryUsage().heapUsed / 1024 / 1024;
  result.inotifyWatches = inotifyWatches();
  if (detect) await detect();
  await close();
  return result;
}

// ---------------------------------------------------------------- parent side

function chokidarVersion() {
  try {
    return JSON.parse(fs.readFileSync(path.join(BENCH_DIR, '..', 'node_modules', 'chokidar', 'package.json'), 'utf8'))
      .version;
  } catch {
    return 'unknown';
  }
}

function main(args) {
  const { vms: n, retained: k } = args;
  buildRemote(n, k);
  const rows = [];
  for (const strategy of STRATEGIES) {
    if (strategy === 'chokidar-whole-tree' && n * k > WHOLE_TREE_LIMIT && !args.all) {
      console.error(`${strategy}: skipped (N*K = ${n * k} > ${WHOLE_TREE_LIMIT}; --all to run it)`);
      rows.push({ strategy, skipped: true });
      continue;
    }
    console.error(`${strategy}: running...`);
    const child = spawnSync(
      process.execPath,
      ['--expose-gc', SELF, '--child', strategy, '--vms', String(n), '--retained', String(k)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
        encoding: 'utf8',
        maxBuffer: 16 * 1024 * 1024,
        timeout: 3_600_000,
      },
    );
    const lastLine = (child.stdout ?? '').trim().split('\n').pop();
    let row;
    try {
      row = JSON.parse(lastLine);
    } catch {
      row = { strategy, error: `child exited ${child.status ?? child.signal}: ${child.error?.message ?? lastLine}` };
    }
    rows.push(row);
    console.error(`${strategy}: ${JSON.stringify(row)}`);
  }

  const fmt = (x, digits) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '-');
  const lines = [
    `N=${n} VM folders, K=${k} retained backups (${n * (k * (DISKS_PER_VM + 1) + 1)} files); ${os.cpus().length} cores, Node ${process.version}, chokidar ${chokidarVersion()}`,
    '',
    '| strategy | ready (s) | peak RSS (MB) | RSS after GC (MB) | inotify watches |',
    '|---|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    if (r.skipped) lines.push(`| ${r.strategy} | skipped | skipped | skipped | skipped |`);
    else if (r.error && r.peakRssMb === undefined) lines.push(`| ${r.strategy} | error: ${r.error} | | | |`);
    else
      lines.push(
        `| ${r.strategy} | ${fmt(r.readyS, 2)} | ${fmt(r.peakRssMb, 1)} | ${fmt(r.rssAfterGcMb, 1)} | ${r.inotifyWatches ?? '-'} |`,
      );
  }
  const ours = rows.find((r) => r.strategy === 'ours');
  if (ours && !ours.skipped) {
    lines.push('');
    lines.push(
      `ours: ${ours.leaves}/${n} leaves reported${ours.error ? ` (${ours.error})` : ''}; chokidar ready after ${fmt(ours.chokidarReadyS, 2)} s; new <dt>.json seen as leaf-changed after ${ours.changeDetectedMs ?? `never (${ours.changeError})`} ms`,
    );
  }
  console.log(lines.join('\n'));

  const resultsDir = path.join(BENCH_DIR, 'results');
  fs.mkdirSync(resultsDir, { recursive: true });
  const out = path.join(resultsDir, `watch-cost-${n}-${k}.json`);
  const machine = {
    cores: os.cpus().length,
    cpu: os.cpus()[0]?.model,
    memGb: Number((os.totalmem() / 1024 ** 3).toFixed(1)),
    kernel: os.release(),
    node: process.version,
    chokidar: chokidarVersion(),
  };
  fs.writeFileSync(
    out,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        vms: n,
        retained: k,
        disksPerVm: DISKS_PER_VM,
        root: remoteRoot(n, k),
        machine,
        results: rows,
      },
      null,
      2,
    ) + '\n',
  );
  console.error(`wrote ${out}`);
}

const args = parseArgs(process.argv.slice(2));
if (args.child !== undefined) {
  const result = await runChild(args.child, args.vms, args.retained);
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(0);
} else {
  main(args);
}
