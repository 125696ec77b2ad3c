// The benchmark of issue 5: builds a realistic remote under /tmp and runs the real CLI as separate processes.
//   node bench/run.mjs [--scale F] [--out FILE] [--growth] [--growth-base F] [--profile DIR] [--keep-logs]
//                      [--fs tmp|ext4-loop] [--memory] [--runs N] [--log-level debug] [--quick]
//                      [--lift-repeats N] [--lift-threads 4,16] [--stop-after-lift]
// --lift-repeats N (full runs) lifts the flat remote N times on the same state: after each run but the last, its units
//   are locked again by hand and the index copied back from before the lift (untimed). --stop-after-lift ends a full
//   run after step 7 (no floors, no rebuild-index): with both, the lift alone is measured again and again in one build
//   of the remote (bench/lift-watch.mjs samples what it waits on). --lift-threads A,B,.. runs the repeats with those
//   UV_THREADPOOL_SIZE values in turn (the first run keeps the default). Each lift run's discards are recorded.
// --runs N repeats each scale N times and prints, after each run's table, one of medians (each figure's median).
// --quick: the guard of issue 25, 2 to 3 minutes at its default scale 0.5 and --fs ext4-loop: idle latency (10
//   samples), the burst, the catch-up and the lift only, each printed as a ratio to its floor measured in the same run
//   (the same work done by hand with chattr), so that the machine's load cancels out; not a timed test of `npm test`.
// Run as root after `npm run build`, on a local ext4 /tmp. Prints Markdown tables and writes JSON
// (default bench/results/bench-<date>.json). Everything made immutable is made mutable again and removed at the end,
// also on failure or Ctrl-C (chattr -R -i, then rm -rf of /tmp/xo-bench-*).
//
// Steps (counts are multiplied by --scale, except the idle latency samples):
//   1 start-up on an empty remote          6 catch-up at start (daemon stopped, more backups written)
//   2 idle latency (json -> immutable)     7 lift of everything (faketime +8d, duration 7d)
//   3 burst of flat VM backups             8 rebuild-index (everything locked by hand, index removed)
//   4 VHD directory backups                9 peak RSS of the daemon (VmHWM)
//   5 config and pool metadata backups    10 index bytes per entry; 11 the floor: batched chattr by hand
// --growth runs all steps at base, 2x base and 4x base (default 0.05) and prints the growth of each figure.
// --fs ext4-loop runs everything (remote and index) on a freshly made ext4 image, loop-mounted: /tmp's own ext4 creates
//   files 10x slower here (see docs/performance.md). --memory runs the memory-at-scale workloads instead of the steps:
//   5000 VM folders x 14 retained backups, and an index of 1,000,000 entries (both x --scale).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { writeConfigBackup, writePoolBackup, xoDatetime } from '../dist/demo/sample-remote.js';
import { lockedEntry, pendingEntry } from '../dist/index/entry.js';

const SELF = fileURLToPath(import.meta.url);
const REPO = path.resolve(path.dirname(SELF), '..');
const BIN = path.join(REPO, 'bin', 'xo-immutable-backups.js');
// NODE_EXTRA_CA_CERTS (set on some build machines, never by the systemd unit) makes every Node start parse a CA
// bundle first: 40-70 ms of each lift run's fixed cost here (docs/dev/performance-history.md, "Lift (session 10)").
const { NODE_EXTRA_CA_CERTS: _unused, ...inherited } = process.env;
const ENV = { ...inherited, LC_ALL: 'C', LANG: 'C' };
// The daemon runs with the environment systemd/xo-immutable-backups.service gives it: its Environment= lines, read
// here so that the two cannot drift apart (NODE_OPTIONS added to any the caller set).
const DAEMON_ENV = { ...ENV, ...unitEnvironment() };
function unitEnvironment() {
  const unit = fs.readFileSync(path.join(REPO, 'systemd', 'xo-immutable-backups.service'), 'utf8');
  const env = {};
  for (const [, quoted, bare] of unit.matchAll(/^Environment=(?:"([^"]*)"|(\S+))$/gm)) {
    const assignment = quoted ?? bare;
    const at = assignment.indexOf('=');
    env[assignment.slice(0, at)] = assignment.slice(at + 1);
  }
  if (process.env.NODE_OPTIONS)
    env.NODE_OPTIONS = [process.env.NODE_OPTIONS, env.NODE_OPTIONS].filter(Boolean).join(' ');
  return env;
}

const REMOTE_ID = 'main';
// Full runs put the VHD directories and the date folders in a second remote, so that the lift of the issue's own
// workload (flat files only) is timed apart from theirs: two lift runs, one per remote (see lift below).
const DIRS_REMOTE_ID = 'dirs';
const JOB_ID = 'a1b2c3d4-0000-4000-8000-000000000001';
const DISKS_PER_VM = 4;
const BLOCKS_PER_VHD_DIR = 1100; // blocks/0/0..999 and blocks/1/0..99, as vhd-lib lays them out (block id / 1000)
const XARGS_BATCH = 4096;
const FULL = {
  burstVms: 5000,
  vhdDirVms: 75,
  configBackups: 24,
  pools: 2,
  poolBackups: 12,
  catchUpVms: 1000,
};
const IDLE_SAMPLES = 20; // per kind (existing VM folder, new VM folder); not scaled
const QUICK_IDLE_SAMPLES = 10;
const QUICK_SCALE = 0.5;
const TIMEOUT_MS = 600_000;

// ---------------------------------------------------------------- arguments, small helpers

function parseArgs(argv) {
  const args = {
    scale: 1,
    out: undefined,
    growth: false,
    growthBase: 0.05,
    profile: undefined,
    keepLogs: false,
    fs: 'tmp',
    memory: false,
    quick: false,
    runs: 1,
    logLevel: 'info',
    liftRepeats: 1,
    liftThreads: undefined,
    stopAfterLift: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--scale') args.scale = Number(argv[++i]);
    else if (a === '--out') args.out = argv[++i];
    else if (a === '--growth') args.growth = true;
    else if (a === '--growth-base') args.growthBase = Number(argv[++i]);
    else if (a === '--profile') args.profile = path.resolve(argv[++i]);
    else if (a === '--keep-logs') args.keepLogs = true;
    else if (a === '--fs') args.fs = argv[++i];
    else if (a === '--memory') args.memory = true;
    else if (a === '--quick') args.quick = true;
    else if (a === '--runs') args.runs = Number(argv[++i]);
    else if (a === '--log-level') args.logLevel = argv[++i];
    else if (a === '--lift-repeats') args.liftRepeats = Number(argv[++i]);
    else if (a === '--stop-after-lift') args.stopAfterLift = true;
    else if (a === '--lift-threads') args.liftThreads = argv[++i].split(',').map(Number);
    else if (a === '--help' || a === '-h') {
      const text = fs.readFileSync(SELF, 'utf8').split('\n');
      console.log(
        text
          .slice(
            0,
            text.findIndex((l) => l.startsWith('import ')),
          )
          .join('\n'),
      );
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (args.quick && !argv.includes('--scale')) args.scale = QUICK_SCALE;
  // On /tmp here the lift's unlinks wait for the disk's discards, which swamp the code's cost (docs/performance.md).
  if (args.quick && !argv.includes('--fs')) args.fs = 'ext4-loop';
  if (args.quick && (args.growth || args.memory)) throw new Error('--quick runs alone: not with --growth or --memory');
  for (const key of ['scale', 'growthBase'])
    if (!(args[key] > 0)) throw new Error(`--${key} must be a positive number`);
  if (!Number.isInteger(args.runs) || args.runs < 1) throw new Error('--runs must be a whole number, 1 or more');
  if (!Number.isInteger(args.liftRepeats) || args.liftRepeats < 1)
    throw new Error('--lift-repeats must be a whole number, 1 or more');
  if ((args.liftRepeats > 1 || args.stopAfterLift) && (args.quick || args.growth || args.memory))
    throw new Error('--lift-repeats and --stop-after-lift are for full runs: not with --quick, --growth or --memory');
  if (args.liftThreads?.some((n) => !Number.isInteger(n) || n < 1 || n > 1024))
    throw new Error('--lift-threads takes thread pool sizes, 1 to 1024, comma-separated');
  if (args.stopAfterLift && args.runs > 1) throw new Error('--stop-after-lift runs once: not with --runs');
  if (!['trace', 'debug', 'info'].includes(args.logLevel)) throw new Error('--log-level must be trace, debug or info');
  if (!['tmp', 'ext4-loop'].includes(args.fs))
    throw new Error("--fs must be tmp (the machine's /tmp) or ext4-loop (a fresh ext4 image, loop-mounted)");
  return args;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const hrMs = () => Number(process.hrtime.bigint()) / 1e6;
const scaled = (n, scale, min = 1) => Math.max(min, Math.round(n * scale));
const median = (xs) => percentile(xs, 50);
function percentile(xs, p) {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
const log = (msg) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);

// Deterministic uuid-looking names.
function fakeUuid(a, b) {
  const hex = (x, w) => (x >>> 0).toString(16).padStart(w, '0').slice(-w);
  return `${hex(a, 8)}-${hex(b, 4)}-4${hex(a * 7 + b, 3)}-8${hex(b * 13 + a, 3)}-${hex(a, 6)}${hex(b, 6)}`;
}

// ---------------------------------------------------------------- writing backups (XO's layout and order, json last)

function metadataOf(dt, vhds) {
  const instant = Date.parse(
    `${dt.slice(0, 4)}-${dt.slice(4, 6)}-${dt.slice(6, 8)}T${dt.slice(9, 11)}:${dt.slice(11, 13)}:${dt.slice(13, 15)}Z`,
  );
  return JSON.stringify({ jobId: JOB_ID, mode: 'delta', timestamp: instant, vhds }, null, 2);
}

// A VM folder with its VDI folders and no backup yet; later backups reuse the same VDI folders.
function makeVmFolder(root, vmIndex) {
  const vm = fakeUuid(0x10000000 + vmIndex, 0);
  const folder = path.join(root, 'xo-vm-backups', vm);
  const vdis = [];
  for (let d = 0; d < DISKS_PER_VM; d++) {
    const vdi = fakeUuid(0x20000000 + vmIndex, d + 1);
    fs.mkdirSync(path.join(folder, 'vdis', JOB_ID, vdi), { recursive: true });
    vdis.push(vdi);
  }
  return { folder, vdis };
}

const FLAT_VHD = Buffer.alloc(4096, 1);
const CACHE = Buffer.from('cache');

// One delta backup of flat VHDs: the disks, XO's cache, then the json. Returns what must end up immutable.
function writeFlatBackup(vm, dt) {
  const units = [];
  const vhds = {};
  for (const vdi of vm.vdis) {
    const rel = `vdis/${JOB_ID}/${vdi}/${dt}.vhd`;
    fs.writeFileSync(path.join(vm.folder, rel), FLAT_VHD);
    units.push(path.join(vm.folder, rel));
    vhds[vdi] = rel;
  }
  fs.writeFileSync(path.join(vm.folder, 'cache.json.gz'), CACHE);
  const json = path.join(vm.folder, `${dt}.json`);
  fs.writeFileSync(json, metadataOf(dt, vhds));
  units.push(json);
  return { label: json, flat: units, recursive: [] };
}

// One delta backup of VHD directories: data/<dt>.vhd/{blocks/<n>/<m>, bat, footer, header, chunk-filters.json}, the alias, then the json.
function writeVhdDirBackup(vm, dt) {
  const flat = [];
  const recursive = [];
  const vhds = {};
  const block = Buffer.alloc(512, 7);
  for (const vdi of vm.vdis) {
    const vdiFolder = path.join(vm.folder, 'vdis', JOB_ID, vdi);
    const vhdDir = path.join(vdiFolder, 'data', `${dt}.vhd`);
    for (let b = 0; b < BLOCKS_PER_VHD_DIR; b++) {
      const sub = path.join(vhdDir, 'blocks', String(Math.floor(b / 1000)));
      if (b % 1000 === 0) fs.mkdirSync(sub, { recursive: true });
      fs.writeFileSync(path.join(sub, String(b % 1000)), block);
    }
    for (const part of ['chunk-filters.json', 'bat', 'footer', 'header'])
      fs.writeFileSync(path.join(vhdDir, part), part);
    const alias = path.join(vdiFolder, `${dt}.alias.vhd`);
    fs.writeFileSync(alias, `data/${dt}.vhd`);
    flat.push(alias);
    recursive.push(vhdDir);
    vhds[vdi] = `vdis/${JOB_ID}/${vdi}/${dt}.alias.vhd`;
  }
  fs.writeFileSync(path.join(vm.folder, 'cache.json.gz'), CACHE);
  const json = path.join(vm.folder, `${dt}.json`);
  fs.writeFileSync(json, metadataOf(dt, vhds));
  flat.push(json);
  return { label: json, flat, recursive };
}

// ---------------------------------------------------------------- the daemon's log (a file, as journald would hold it)

class LogTail {
  constructor(file) {
    this.file = file;
    this.offset = 0;
    this.rest = '';
    this.lines = [];
    this.locked = new Map(); // backup label -> { at (daemon's clock, ms), latencyMs, units, failed }
    this.errors = [];
  }

  poll() {
    let fd;
    try {
      fd = fs.openSync(this.file, 'r');
    } catch {
      return;
    }
    try {
      const size = fs.fstatSync(fd).size;
      if (size <= this.offset) return;
      const buffer = Buffer.alloc(size - this.offset);
      fs.readSync(fd, buffer, 0, buffer.length, this.offset);
      this.offset = size;
      const text = this.rest + buffer.toString('utf8');
      const parts = text.split('\n');
      this.rest = parts.pop();
      for (const part of parts) this.#take(part);
    } finally {
      fs.closeSync(fd);
    }
  }

  #take(text) {
    let line;
    try {
      line = JSON.parse(text);
    } catch {
      line = { msg: text, level: 'raw' };
    }
    line.at = line.time ? Date.parse(line.time) : Date.now();
    this.lines.push(line);
    if (typeof line.msg === 'string' && line.msg.startsWith('locked ') && line.backup) {
      this.locked.set(line.backup, {
        at: line.at,
        latencyMs: line.latencyMs,
        units: line.units,
        failed: line.failed,
      });
    }
    if (line.level === 'error' || line.level === 'fatal') this.errors.push(line);
  }

  async waitFor(predicate, what, timeoutMs = TIMEOUT_MS) {
    const deadline = hrMs() + timeoutMs;
    for (;;) {
      this.poll();
      const found = predicate(this);
      if (found) return found;
      if (hrMs() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await sleep(5);
    }
  }

  find(fromIndex, test) {
    for (let i = fromIndex; i < this.lines.length; i++) if (test(this.lines[i])) return this.lines[i];
    return undefined;
  }
}

// ---------------------------------------------------------------- processes

function nodeArgs(ctx, name) {
  return ctx.profile
    ? ['--cpu-prof', `--cpu-prof-dir=${ctx.profile}`, `--cpu-prof-name=${name}-${ctx.label}-${Date.now()}.cpuprofile`]
    : [];
}

async function startDaemon(ctx) {
  const logFile = path.join(ctx.dir, `daemon-${++ctx.daemonRuns}.log`);
  const out = fs.openSync(logFile, 'a');
  const spawnedAt = Date.now();
  const child = spawn(process.execPath, [...nodeArgs(ctx, 'protect'), BIN, 'protect', '--config', ctx.config], {
    env: DAEMON_ENV,
    stdio: ['ignore', out, out],
  });
  fs.closeSync(out);
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const daemon = {
    child,
    tail: new LogTail(logFile),
    spawnedAt,
    exited,
    exit: undefined,
  };
  exited.then((e) => (daemon.exit = e));
  ctx.daemon = daemon;
  liveChildren.add(child);
  exited.then(() => liveChildren.delete(child));
  const protecting = await daemon.tail.waitFor((t) => {
    if (daemon.exit) throw new Error(`daemon exited ${JSON.stringify(daemon.exit)} during start-up; see ${logFile}`);
    return t.find(0, (l) => typeof l.msg === 'string' && l.msg.startsWith('protecting '));
  }, 'the "protecting" line');
  return { daemon, protecting, startupMs: protecting.at - spawnedAt };
}

function peakRssMb(pid) {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmHWM:\s+(\d+) kB/m);
  return m ? Number(m[1]) / 1024 : NaN;
}

// SIGTERM, then wait for the "stopped" line and the exit. A daemon that logged "stopped" but is still alive 5 s later
// is killed (SIGKILL) and counted: the process sometimes lingers after stopping (see docs/performance.md).
async function stopDaemon(ctx) {
  const daemon = ctx.daemon;
  if (!daemon) return undefined;
  ctx.daemon = undefined;
  const rss = daemon.exit ? NaN : peakRssMb(daemon.child.pid);
  const t0 = hrMs();
  if (!daemon.exit) daemon.child.kill('SIGTERM');
  const from = daemon.tail.lines.length;
  let stoppedMs;
  try {
    await daemon.tail.waitFor(
      (t) => daemon.exit || t.find(from, (l) => l.msg === 'stopped'),
      'the "stopped" line',
      60_000,
    );
    stoppedMs = hrMs() - t0;
  } catch {
    stoppedMs = NaN;
  }
  const exit = await Promise.race([daemon.exited, sleep(5_000).then(() => undefined)]);
  if (!exit) {
    daemon.child.kill('SIGKILL');
    await daemon.exited;
  }
  daemon.tail.poll();
  ctx.daemonErrors.push(...daemon.tail.errors);
  return {
    peakRssMb: rss,
    stoppedMs,
    exit: exit ?? { signal: 'SIGKILL', lingeredAfterStopped: true },
  };
}

function runCli(ctx, name, prefix, args, env = ENV) {
  const [command, ...rest] = [...prefix, process.execPath, ...nodeArgs(ctx, name), BIN, ...args];
  const t0 = hrMs();
  const result = spawnSync(command, rest, {
    env,
    encoding: 'utf8',
    maxBuffer: 1024 * 1024 * 1024,
    timeout: TIMEOUT_MS,
  });
  const ms = hrMs() - t0;
  let json;
  try {
    json = JSON.parse(result.stdout);
  } catch {
    json = undefined;
  }
  return {
    ms,
    status: result.status,
    json,
    stderr: result.stderr?.slice(0, 2000),
    stdout: json ? undefined : result.stdout?.slice(0, 2000),
  };
}

// Runs `<command> <flags> -- paths...` through xargs, at most XARGS_BATCH paths a spawn. Returns ms and the output.
function xargs(command, flags, paths) {
  if (paths.length === 0) return { ms: 0, stdout: '', status: 0 };
  const input = paths.join('\0');
  const t0 = hrMs();
  const result = spawnSync('xargs', ['-0', '-n', String(XARGS_BATCH), command, ...flags, '--'], {
    input,
    env: ENV,
    encoding: 'utf8',
    maxBuffer: 1024 * 1024 * 1024,
  });
  return {
    ms: hrMs() - t0,
    stdout: result.stdout,
    stderr: result.stderr,
    status: result.status,
  };
}

// One batched `lsattr -d` pass: how many of the paths carry the immutable flag.
function countImmutable(paths) {
  const { stdout } = xargs('lsattr', ['-d'], paths);
  let immutable = 0;
  for (const line of stdout.split('\n')) {
    const space = line.indexOf(' ');
    if (space > 0 && line.slice(0, space).includes('i')) immutable++;
  }
  return immutable;
}

// Every file and folder under the remote that is immutable (inside VHD directories and date folders too).
function immutableUnderRoot(root) {
  const result = spawnSync('sh', ['-c', 'find "$1" -print0 | xargs -0 -n 4096 lsattr -d -- 2>/dev/null', 'sh', root], {
    env: ENV,
    encoding: 'utf8',
    maxBuffer: 1024 * 1024 * 1024,
  });
  const paths = [];
  for (const line of result.stdout.split('\n')) {
    const space = line.indexOf(' ');
    if (space > 0 && line.slice(0, space).includes('i')) paths.push(line.slice(space + 1));
  }
  return paths;
}

const allPaths = (group) => [...group.flat, ...group.recursive];

// ---------------------------------------------------------------- the steps

// Where runs put their remote and index: /tmp, or the mount point of a fresh ext4 image (--fs ext4-loop).
let benchBase = os.tmpdir();
let loopMount;

function mountFreshExt4() {
  const holder = fs.mkdtempSync(path.join(os.tmpdir(), 'xo-bench-fs-'));
  liveDirs.add(holder);
  const image = path.join(holder, 'ext4.img');
  const mnt = path.join(holder, 'mnt');
  fs.mkdirSync(mnt);
  const run = (cmd, args) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.error}`);
  };
  run('truncate', ['-s', '24G', image]);
  // Enough inodes for the full scale (about 400,000 files) and the 1,000,000-entry index of --memory.
  run('mkfs.ext4', ['-q', '-F', '-N', '3000000', image]);
  run('mount', ['-o', 'loop', image, mnt]);
  loopMount = mnt;
  benchBase = mnt;
  log(`running on a fresh ext4 image loop-mounted at ${mnt}`);
}

function unmountFreshExt4() {
  if (loopMount === undefined) return;
  spawnSync('chattr', ['-R', '-i', loopMount], { stdio: 'ignore' });
  spawnSync('umount', [loopMount], { stdio: 'ignore' });
  loopMount = undefined;
}

function prepare(scale, label, { dirsRemote = false } = {}) {
  const dir = fs.mkdtempSync(path.join(benchBase, `xo-bench-${label}-`));
  liveDirs.add(dir); // removed at exit whatever happens
  const root = path.join(dir, 'remote');
  const dirsRoot = dirsRemote ? path.join(dir, 'remote-dirs') : undefined;
  const indexPath = path.join(dir, 'index');
  fs.mkdirSync(root);
  if (dirsRoot) fs.mkdirSync(dirsRoot);
  const remotes = { [REMOTE_ID]: { root, immutabilityDuration: '7d' } };
  if (dirsRoot) remotes[DIRS_REMOTE_ID] = { root: dirsRoot, immutabilityDuration: '7d' };
  const config = path.join(dir, 'config.json');
  fs.writeFileSync(
    config,
    JSON.stringify(
      {
        indexPath,
        logLevel: benchArgs.logLevel,
        liftEvery: '1h',
        rescanEvery: '15m',
        remotes,
      },
      null,
      2,
    ),
  );
  return {
    dir,
    root,
    // Where the VHD directories and date folders go: the second remote, or the first when there is none.
    dirsRoot: dirsRoot ?? root,
    remoteIds: dirsRoot ? [REMOTE_ID, DIRS_REMOTE_ID] : [REMOTE_ID],
    indexPath,
    config,
    scale,
    label,
    daemonRuns: 0,
    daemonErrors: [],
    groups: {},
    vms: [],
    nextVm: 0,
    nextSecond: 0,
  };
}

// A distinct datetime per call, a few minutes in the past, so no two backups of a folder share a name.
function nextDatetime(ctx) {
  if (ctx.base === undefined) ctx.base = Math.floor(Date.now() / 1000) * 1000 - 3600_000;
  return xoDatetime(ctx.base + 1000 * ctx.nextSecond++);
}

function newGroup(ctx, name) {
  ctx.groups[name] = { flat: [], recursive: [], labels: [] };
  return ctx.groups[name];
}

function addBackup(group, written) {
  group.flat.push(...written.flat);
  group.recursive.push(...written.recursive);
  group.labels.push(written.label);
}

async function waitLocked(tail, labels, what) {
  await tail.waitFor((t) => labels.every((l) => t.locked.has(l)), what);
  return Math.max(...labels.map((l) => tail.locked.get(l).at));
}

// 2. one backup at a time on an idle daemon: into existing VM folders, then into new ones.
async function idleLatency(ctx, samples = IDLE_SAMPLES) {
  const { tail } = ctx.daemon;
  const group = newGroup(ctx, 'idle');
  const existing = Array.from({ length: samples }, () => makeVmFolder(ctx.root, ctx.nextVm++));
  await sleep(1500); // let the watcher pick up the new folders
  const result = {};
  for (const [kind, folderFor] of [
    ['existing VM folder', (i) => existing[i]],
    ['new VM folder', () => makeVmFolder(ctx.root, ctx.nextVm++)],
  ]) {
    const ours = [];
    const daemons = [];
    for (let i = 0; i < samples; i++) {
      const written = writeFlatBackup(folderFor(i), nextDatetime(ctx));
      const writtenAt = Date.now();
      addBackup(group, written);
      const at = await waitLocked(tail, [written.label], `idle backup ${written.label}`);
      ours.push(at - writtenAt);
      daemons.push(tail.locked.get(written.label).latencyMs);
      await sleep(200);
    }
    result[kind] = {
      samples: ours.length,
      medianMs: median(ours),
      p95Ms: percentile(ours, 95),
      maxMs: Math.max(...ours),
      daemonLatencyMedianMs: median(daemons),
      all: ours,
    };
  }
  const units = allPaths(group);
  result.verified = countImmutable(units) === units.length;
  return result;
}

// A burst written as fast as possible while the daemon runs: time from the last file written to every unit immutable.
async function burst(ctx, name, count, write) {
  const group = newGroup(ctx, name);
  const t0 = Date.now();
  for (let i = 0; i < count; i++) addBackup(group, await write(i));
  const lastWrittenAt = Date.now();
  const lastLockedAt = await waitLocked(ctx.daemon.tail, group.labels, `${name}: ${count} backups locked`);
  const units = allPaths(group);
  const immutable = countImmutable(units);
  return {
    backups: count,
    units: units.length,
    files: countFiles(group),
    writeMs: lastWrittenAt - t0,
    drainMs: Math.max(0, lastLockedAt - lastWrittenAt),
    firstToLastMs: lastLockedAt - t0,
    // Epoch ms, for profile windows (bench/profile-summary.mjs --window).
    at: { started: t0, lastWritten: lastWrittenAt, lastLocked: lastLockedAt },
    verified: immutable === units.length,
    immutable,
  };
}

// Files written by a group, counting every file inside VHD directories and date folders.
function countFiles(group) {
  let files = group.flat.length;
  for (const dir of group.recursive) files += countTree(dir);
  return files;
}
function countTree(dir) {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true }))
    n += e.isDirectory() ? countTree(path.join(dir, e.name)) : 1;
  return n;
}

function burstVms(ctx) {
  const count = scaled(FULL.burstVms, ctx.scale);
  const dt = nextDatetime(ctx);
  return burst(ctx, 'burst', count, (i) => {
    const vm = makeVmFolder(ctx.root, ctx.nextVm++);
    ctx.vms.push(vm);
    return writeFlatBackup(vm, dt);
  });
}

function burstVhdDirs(ctx) {
  const count = scaled(FULL.vhdDirVms, ctx.scale);
  const dt = nextDatetime(ctx);
  return burst(ctx, 'vhdDirs', count, () => writeVhdDirBackup(makeVmFolder(ctx.dirsRoot, ctx.nextVm++), dt));
}

function burstMetadata(ctx) {
  const configs = scaled(FULL.configBackups, ctx.scale, 2);
  const perPool = scaled(FULL.poolBackups, ctx.scale, 1);
  const jobs = [];
  for (let i = 0; i < configs; i++)
    jobs.push((dt) => writeConfigBackup(ctx.dirsRoot, 'c0ffee00-0000-4000-8000-000000000001', dt));
  for (let p = 0; p < FULL.pools; p++)
    for (let i = 0; i < perPool; i++)
      jobs.push((dt) =>
        writePoolBackup(ctx.dirsRoot, 'c0ffee00-0000-4000-8000-000000000002', fakeUuid(0x30000000 + p, 9), dt),
      );
  // Date folders are the units (locked recursively); writeDateFolder lists the files inside too.
  return burst(ctx, 'metadata', jobs.length, async (i) => {
    const written = await jobs[i](nextDatetime(ctx));
    return { label: written.label, flat: [], recursive: [written.label] };
  });
}

// 6. the daemon stopped, new backups written into existing VM folders, then started again.
async function catchUp(ctx) {
  const group = newGroup(ctx, 'catchUp');
  const count = Math.min(scaled(FULL.catchUpVms, ctx.scale), ctx.vms.length);
  const dt = nextDatetime(ctx);
  for (let i = 0; i < count; i++) addBackup(group, writeFlatBackup(ctx.vms[i], dt));
  const { daemon, protecting, startupMs } = await startDaemon(ctx);
  const units = allPaths(group);
  const immutable = countImmutable(units);
  const lastLockedAt = Math.max(...group.labels.map((l) => daemon.tail.locked.get(l)?.at ?? NaN));
  const initialLiftPassMs = await waitInitialLiftPass(ctx, protecting.at);
  const fullProofMs = await waitFullProof(daemon);
  return {
    backups: count,
    units: units.length,
    startToProtectingMs: startupMs,
    // The first log line is written once Node and the modules are loaded: what the daemon itself costs from there.
    startToLastLockedMs: lastLockedAt - daemon.spawnedAt,
    at: { spawned: daemon.spawnedAt, lastLocked: lastLockedAt },
    firstLineToLastLockedMs: lastLockedAt - daemon.tail.lines[0].at,
    daemonStartupMs: protecting.startupMs,
    backupsLockedAtStart: protecting.backupsLocked,
    initialLiftPassMs,
    fullProofMs,
    verified: immutable === units.length,
    immutable,
  };
}

// After "protecting" the daemon runs its first lift pass (it reads the whole index), then writes status.json. Waiting
// for that keeps the pass inside the peak RSS, and avoids a SIGTERM during it (the daemon then lingers, see the docs).
async function waitInitialLiftPass(ctx, protectingAt) {
  const status = path.join(ctx.indexPath, 'status.json');
  const deadline = hrMs() + 120_000;
  while (hrMs() < deadline) {
    try {
      const heartbeat = Date.parse(JSON.parse(fs.readFileSync(status, 'utf8')).heartbeat);
      if (heartbeat >= protectingAt) return heartbeat - protectingAt;
    } catch {
      // not there yet, or being rewritten
    }
    await sleep(10);
  }
  return NaN;
}

// The full proof that follows start-up (every retained backup, proven or not) logs a line when done.
async function waitFullProof(daemon) {
  const line = await daemon.tail
    .waitFor(
      (t) => t.find(0, (l) => typeof l.msg === 'string' && l.msg.startsWith('full proof (after start-up) done')),
      'the full proof after start-up',
    )
    .catch(() => undefined);
  return line?.ms ?? NaN;
}

// chattr +i makes the kernel write back a file's dirty pages first: locking a file just written costs a disk round
// trip that the floor above (files long written) does not pay. Here: the burst's files written again by hand (same
// count and size, one process), then chattr +i at once, in one process and in 8 (xargs -P 8), as the daemon does.
function freshFloor(ctx, count) {
  const result = {};
  for (const lanes of [1, 8]) {
    const folder = path.join(ctx.dir, `fresh-${lanes}`);
    const paths = [];
    for (let i = 0; i < count; i++) {
      const sub = path.join(folder, String(Math.floor(i / 5)));
      if (i % 5 === 0) fs.mkdirSync(sub, { recursive: true });
      const file = path.join(sub, `${i}.vhd`);
      fs.writeFileSync(file, FLAT_VHD);
      paths.push(file);
    }
    const perSpawn = Math.min(XARGS_BATCH, Math.ceil(count / lanes));
    const t0 = hrMs();
    spawnSync('xargs', ['-0', '-P', String(lanes), '-n', String(perSpawn), 'chattr', '+i', '--'], {
      input: paths.join('\0'),
      env: ENV,
    });
    result[`lanes${lanes}Ms`] = hrMs() - t0;
    spawnSync('chattr', ['-R', '-i', folder], { env: ENV });
    fs.rmSync(folder, { recursive: true, force: true });
  }
  return { files: count, ...result };
}

// The index's own floor on the filesystem it lives on: creating, then removing, one empty file per unit, synchronously
// in one process, in one folder (an index entry is one file).
function indexFloor(ctx, count) {
  const folder = path.join(ctx.indexPath, 'floor');
  fs.mkdirSync(folder, { recursive: true });
  let t0 = hrMs();
  for (let i = 0; i < count; i++) fs.closeSync(fs.openSync(path.join(folder, String(i)), 'w', 0o600));
  const createMs = hrMs() - t0;
  t0 = hrMs();
  for (let i = 0; i < count; i++) fs.unlinkSync(path.join(folder, String(i)));
  const unlinkMs = hrMs() - t0;
  fs.rmdirSync(folder);
  return {
    files: count,
    createMs,
    unlinkMs,
    createUsPerFile: (1000 * createMs) / count,
  };
}

// Every remote's index folder together.
function indexSize(ctx) {
  const folders = ctx.remoteIds.map((id) => path.join(ctx.indexPath, id));
  const entries = Number(
    spawnSync('sh', ['-c', 'find "$@" -type f | wc -l', 'sh', ...folders], {
      encoding: 'utf8',
    }).stdout.trim(),
  );
  // du -c: the last line is the total.
  const total = (flags) =>
    Number(
      spawnSync('du', [...flags, '-c', ...folders], { encoding: 'utf8' })
        .stdout.trim()
        .split('\n')
        .pop()
        .split(/\s/)[0],
    );
  const bytes = total(['-sb']);
  const allocated = total(['-s', '--block-size=1']);
  return {
    entries,
    bytes,
    allocatedBytes: allocated,
    bytesPerEntry: bytes / entries,
    allocatedPerEntry: allocated / entries,
  };
}

function everyUnit(ctx) {
  const flat = [];
  const recursive = [];
  for (const g of Object.values(ctx.groups)) {
    flat.push(...g.flat);
    recursive.push(...g.recursive);
  }
  return { flat, recursive, all: [...flat, ...recursive] };
}

// 7. the lift with the clock 8 days ahead (duration 7d): everything expires. One CLI run per remote, the flat
// remote (the issue's own workload: flat VHDs and jsons) first, then the one holding the VHD directories and date
// folders (full runs only); "lift of everything" is both runs together.
function lift(ctx) {
  const parts = {};
  for (const id of ctx.remoteIds) parts[id] = liftRemoteRun(ctx, id);
  const units = everyUnit(ctx).all;
  const stillImmutable = countImmutable(units);
  const tree = ctx.remoteIds
    .flatMap((id) => immutableUnderRoot(id === REMOTE_ID ? ctx.root : ctx.dirsRoot))
    .filter((p) => path.basename(p) !== 'immutability.json');
  const runs = Object.values(parts);
  const failedRun = runs.find((p) => p.status !== 0);
  const sum = (key) => runs.reduce((s, p) => s + (p[key] ?? 0), 0);
  return {
    ms: sum('ms'),
    cpuMs: sum('cpuMs'),
    at: { started: runs[0].at.started, ended: runs.at(-1).at.ended },
    status: failedRun?.status ?? 0,
    unlocked: sum('unlocked'),
    failed: sum('failed'),
    suspicious: sum('suspicious'),
    units: units.length,
    verified: stillImmutable === 0 && tree.length === 0,
    stillImmutableUnits: stillImmutable,
    stillImmutableUnderRoot: tree.length,
    // Each run alone: `flat` is the issue's workload; `dirs`, the VHD directories and date folders (full runs).
    flat: parts[REMOTE_ID],
    ...(parts[DIRS_REMOTE_ID] ? { dirs: parts[DIRS_REMOTE_ID] } : {}),
    ...(failedRun ? { stderr: failedRun.stderr, stdout: failedRun.stdout } : {}),
  };
}

// The discard counters of the disk under `dir` (/sys/block/<dev>/stat, fields 12 and 15): on a filesystem mounted with
// `discard` each unlink that frees a block waits for one (docs/performance.md), so they say how much of a lift's wall
// time the disk took. Undefined where the kernel does not count them.
function discardsUnder(dir) {
  const { dev } = fs.statSync(dir);
  const text = fs.readFileSync(
    `/sys/dev/block/${Math.floor(dev / 256) & 0xfff}:${(dev & 0xff) | ((dev >> 12) & 0xfff00)}/stat`,
    'utf8',
  );
  const f = text.trim().split(/\s+/).map(Number);
  return f.length >= 15 ? { count: f[11], ms: f[14] } : undefined;
}

// The busy time of every CPU so far (/proc/stat: all but idle and iowait), in ms; undefined where it cannot be read.
function machineBusyMs() {
  try {
    const [, ...fields] = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/);
    const ticks = fields.map(Number);
    const total = ticks.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = ticks[3] + ticks[4];
    // In USER_HZ, 100 a second on Linux.
    return ((total - idle) * 1000) / 100;
  } catch {
    return undefined;
  }
}

function liftRemoteRun(ctx, id, threads) {
  // The clock guard rightly freezes lifting after an 8-day jump within one boot: --accept-clock is the admin's word
  // that the (simulated) clock is right, as after a real clock change.
  // GNU time: the CPU of the lift's Node process, which a loaded machine moves less than the wall time. Not its flag
  // helpers': they end on their own once it exits, never waited for, so their time is not counted.
  const times = path.join(ctx.dir, `lift-${id}.time`);
  const discards0 = discardsUnder(ctx.dir);
  const busy0 = machineBusyMs();
  const run = runCli(
    ctx,
    id === REMOTE_ID ? 'lift' : `lift-${id}`,
    ['/usr/bin/time', '-f', '%U %S', '-o', times, 'faketime', '-f', '+8d'],
    ['lift', '--config', ctx.config, '--remote', id, '--accept-clock', '--json'],
    threads === undefined ? ENV : { ...ENV, UV_THREADPOOL_SIZE: String(threads) },
  );
  const discards1 = discardsUnder(ctx.dir);
  const busy1 = machineBusyMs();
  const report = run.json?.remotes?.[0];
  const endedAt = Date.now();
  const [user, system] = fs.readFileSync(times, 'utf8').trim().split('\n').pop().split(' ').map(Number);
  return {
    ms: run.ms,
    cpuMs: 1000 * (user + system),
    // Both cores' busy time during the run (the flag helpers' too, and whatever else ran): near twice the wall time,
    // the lift is bound by the CPU of the whole machine, and moving work between threads gains nothing.
    ...(busy0 !== undefined && busy1 !== undefined ? { machineBusyMs: busy1 - busy0 } : {}),
    ...(discards0 && discards1
      ? {
          discards: discards1.count - discards0.count,
          discardDiskMs: discards1.ms - discards0.ms,
        }
      : {}),
    ...(threads === undefined ? {} : { threads }),
    at: { started: endedAt - run.ms, ended: endedAt },
    status: run.status,
    unlocked: report?.unlocked,
    failed: report?.failed?.length,
    suspicious: report?.suspicious?.length,
    ...(run.status === 0 ? {} : { stderr: run.stderr, stdout: run.stdout }),
  };
}

// The index as it stands before the lift, copied aside (cp -a: window records and entries as they were).
function copyIndex(ctx) {
  const copy = `${ctx.indexPath}.before-lift`;
  spawnSync('cp', ['-a', ctx.indexPath, copy], { env: ENV });
  return copy;
}

// The flat remote's lift again on the same state, `count` times: its units locked again by hand and the index copied
// back from before the lift (both untimed), then the lift run and timed as the first.
function repeatFlatLift(ctx, beforeLift, count, threads) {
  const flat = Object.entries(ctx.groups)
    .filter(([name]) => !DIRS_GROUPS.has(name))
    .flatMap(([, g]) => allPaths(g));
  const repeats = [];
  for (let i = 0; i < count; i++) {
    xargs('chattr', ['+i'], flat);
    fs.rmSync(ctx.indexPath, { recursive: true, force: true });
    spawnSync('cp', ['-a', beforeLift, ctx.indexPath], { env: ENV });
    spawnSync('sync', ['-f', ctx.indexPath], { env: ENV });
    const run = liftRemoteRun(ctx, REMOTE_ID, threads?.[i % threads.length]);
    const still = countImmutable(flat);
    const { at: _at, ...figures } = run;
    repeats.push({ ...figures, stillImmutable: still });
    log(`flat lift again (${i + 2}): ${liftFigures(run)}, ${fmt(run.unlocked)} unlocked`);
  }
  return repeats;
}

const liftFigures = (run) =>
  `${fmt(run.ms)} ms (CPU ${fmt(run.cpuMs)} ms` +
  (run.machineBusyMs === undefined ? '' : `, machine busy ${fmt(run.machineBusyMs)} ms`) +
  (run.discards === undefined ? '' : `; ${fmt(run.discards)} discards, ${fmt(run.discardDiskMs)} ms on the disk`) +
  (run.threads === undefined ? '' : `; UV_THREADPOOL_SIZE ${run.threads}`) +
  ')';

// The floor of the flat remote's lift alone: chattr -i of every group but the VHD directories and date folders.
const DIRS_GROUPS = new Set(['vhdDirs', 'metadata']);
function flatFloorMs(floorRun) {
  return Object.entries(floorRun.byGroup)
    .filter(([name]) => !DIRS_GROUPS.has(name))
    .reduce((s, [, g]) => s + g.ms, 0);
}

// 11. the floor: the same unit paths, batched into few chattr spawns by hand (-R for directories).
function floor(ctx, flag) {
  const byGroup = {};
  for (const [name, g] of Object.entries(ctx.groups)) {
    const flat = xargs('chattr', [flag], g.flat);
    const rec = xargs('chattr', ['-R', flag], g.recursive);
    byGroup[name] = {
      ms: flat.ms + rec.ms,
      units: g.flat.length + g.recursive.length,
      failed: flat.status !== 0 || rec.status !== 0,
    };
  }
  const total = Object.values(byGroup).reduce((s, g) => s + g.ms, 0);
  return { totalMs: total, byGroup };
}

// One backup's units in one chattr spawn each, as an idle daemon would at best: the latency floor.
function idleFloor(ctx) {
  const g = ctx.groups.idle;
  const per = [];
  for (let i = 0; i + 5 <= g.flat.length; i += 5) {
    const paths = g.flat.slice(i, i + 5);
    const t0 = hrMs();
    spawnSync('chattr', ['-i', '--', ...paths], { env: ENV });
    per.push(hrMs() - t0);
    spawnSync('chattr', ['+i', '--', ...paths], { env: ENV });
  }
  return { medianMs: median(per) };
}

// 8. everything locked again by hand (that is the +i floor), the index removed, then rebuild-index timed.
function rebuild(ctx) {
  for (const id of ctx.remoteIds) fs.rmSync(path.join(ctx.indexPath, id), { recursive: true, force: true });
  const run = runCli(ctx, 'rebuild', [], ['rebuild-index', '--config', ctx.config, '--json']);
  const reports = run.json?.remotes ?? [];
  // Every remote's report added up (undefined when none came back).
  const total = (of) => (reports.length === 0 ? undefined : reports.reduce((s, r) => s + (of(r) ?? 0), 0));
  const lsattrFloor = xargs('lsattr', ['-d'], everyUnit(ctx).all).ms;
  return {
    ms: run.ms,
    status: run.status,
    indexed: total((r) => r.indexed?.length),
    undated: total((r) => r.undated?.length),
    foldersScanned: total((r) => r.foldersScanned),
    units: everyUnit(ctx).all.length,
    lsattrFloorMs: lsattrFloor,
    ...(run.status === 0 ? {} : { stderr: run.stderr, stdout: run.stdout }),
  };
}

function nodeStartFloor() {
  const t = [];
  for (let i = 0; i < 5; i++) {
    const t0 = hrMs();
    spawnSync(process.execPath, ['-e', '0']);
    t.push(hrMs() - t0);
  }
  return median(t);
}

// ---------------------------------------------------------------- one run at one scale

async function runOnce(scale, args) {
  const label = `s${scale}`;
  const ctx = prepare(scale, label, { dirsRemote: true });
  ctx.profile = args.profile;
  if (ctx.profile) fs.mkdirSync(ctx.profile, { recursive: true });
  const r = { scale, dir: ctx.dir };
  try {
    log(`${label}: 1 start-up on an empty remote (${ctx.dir})`);
    const started = await startDaemon(ctx);
    r.startup = {
      ms: started.startupMs,
      initialLiftPassMs: await waitInitialLiftPass(ctx, started.protecting.at),
      nodeStartFloorMs: nodeStartFloor(),
    };
    log(`${label}: 2 idle latency`);
    r.idle = await idleLatency(ctx);
    // The peak so far after each step of the first daemon: where the peak comes from.
    const hwm = () => (ctx.daemon && !ctx.daemon.exit ? peakRssMb(ctx.daemon.child.pid) : NaN);
    const peakAfter = { idle: hwm() };
    log(`${label}: 3 burst of ${scaled(FULL.burstVms, scale)} VM backups`);
    r.burst = await burstVms(ctx);
    peakAfter.burst = hwm();
    r.freshFloor = freshFloor(ctx, r.burst.units);
    log(`${label}: 4 VHD directories (${scaled(FULL.vhdDirVms, scale) * DISKS_PER_VM} x ${BLOCKS_PER_VHD_DIR} blocks)`);
    r.vhdDirs = await burstVhdDirs(ctx);
    peakAfter.vhdDirs = hwm();
    log(`${label}: 5 config and pool metadata backups`);
    r.metadata = await burstMetadata(ctx);
    const first = await stopDaemon(ctx);
    log(`${label}: 6 catch-up at start`);
    r.catchUp = await catchUp(ctx);
    const second = await stopDaemon(ctx);
    r.peakRss = {
      afterBurstsMb: first.peakRssMb,
      afterCatchUpMb: second.peakRssMb,
      mb: Math.max(first.peakRssMb, second.peakRssMb),
      firstDaemonAfterMb: peakAfter,
    };
    r.daemonExits = [first.exit, second.exit];
    r.index = indexSize(ctx);
    r.indexFloor = indexFloor(ctx, r.index.entries);
    log(`${label}: 7 lift of everything`);
    const beforeLift = args.liftRepeats > 1 ? copyIndex(ctx) : undefined;
    r.lift = lift(ctx);
    log(`${label}: flat lift ${liftFigures(r.lift.flat)}`);
    if (beforeLift) r.liftRepeats = repeatFlatLift(ctx, beforeLift, args.liftRepeats - 1, args.liftThreads);
    if (args.stopAfterLift) {
      r.stoppedAfterLift = true;
      return r;
    }
    log(`${label}: 11 floor chattr +i, then 8 rebuild-index, then floor chattr -i`);
    r.floorLock = floor(ctx, '+i');
    r.rebuild = rebuild(ctx);
    r.idleFloor = idleFloor(ctx);
    r.floorUnlock = floor(ctx, '-i');
    r.daemonErrors = ctx.daemonErrors.slice(0, 20).map((l) => ({ msg: l.msg, err: l.err?.message }));
    r.daemonErrorCount = ctx.daemonErrors.length;
    return r;
  } finally {
    await stopDaemon(ctx).catch(() => undefined);
    if (args.keepLogs)
      for (const f of fs.readdirSync(ctx.dir).filter((f) => f.endsWith('.log')))
        fs.copyFileSync(path.join(ctx.dir, f), path.join(os.tmpdir(), `xo-bench-${label}-${f}`));
    cleanup(ctx.dir);
  }
}

// ---------------------------------------------------------------- the quick guard (--quick)

// Forgetting a lifted unit removes its index entry, a file of about 770 bytes: on a filesystem mounted with `discard`
// and no journal (this machine's /tmp) each unlink that frees a block waits for the disk, and how long moves by 10x
// with what the disk is doing. The lift's floor counts that too: as many such files, written and synced beforehand,
// unlinked by hand in one process.
function entryUnlinkFloor(ctx, count) {
  const folder = path.join(ctx.dir, 'unlink-floor');
  fs.mkdirSync(folder);
  const text = 'x'.repeat(770);
  for (let i = 0; i < count; i++) fs.writeFileSync(path.join(folder, String(i)), text);
  spawnSync('sync', ['-f', folder]);
  const t0 = hrMs();
  for (let i = 0; i < count; i++) fs.unlinkSync(path.join(folder, String(i)));
  const ms = hrMs() - t0;
  fs.rmdirSync(folder);
  return ms;
}

// The burst of --quick: every VM folder written aside first, then renamed into the remote one after another (a few ms
// in all), so that the drain is the daemon's whole work, however slow the writer was on a loaded machine (a slow
// writer lets the daemon keep up, and the drain then measures nothing). The files are as fresh as the floor's.
function burstRenamedIn(ctx) {
  const count = scaled(FULL.burstVms, ctx.scale);
  const dt = nextDatetime(ctx);
  const staging = path.join(ctx.dir, 'staging');
  const written = [];
  for (let i = 0; i < count; i++) {
    const vm = makeVmFolder(staging, ctx.nextVm++);
    written.push({ vm, backup: writeFlatBackup(vm, dt) });
  }
  return burst(ctx, 'burst', count, (i) => {
    const { vm, backup } = written[i];
    const folder = path.join(ctx.root, 'xo-vm-backups', path.basename(vm.folder));
    fs.renameSync(vm.folder, folder);
    ctx.vms.push({ folder, vdis: vm.vdis });
    const moved = (p) => path.join(folder, path.relative(vm.folder, p));
    return {
      label: moved(backup.label),
      flat: backup.flat.map(moved),
      recursive: [],
    };
  });
}

// chattr +i of paths by hand, timed, after an untimed -i: the same files the daemon locked, as few spawns as xargs makes.
function relockByHand(paths) {
  xargs('chattr', ['-i'], paths);
  return xargs('chattr', ['+i'], paths).ms;
}

// Each figure next to the same work done by hand in the same minute: on a loaded machine both slow down together.
async function quickRun(scale, args) {
  const label = `q${scale}`;
  const ctx = prepare(scale, label);
  ctx.profile = args.profile;
  if (ctx.profile) fs.mkdirSync(ctx.profile, { recursive: true });
  const r = { scale, quick: true, dir: ctx.dir, loadAvgAtStart: os.loadavg() };
  try {
    log(`${label}: start-up on an empty remote (${ctx.dir})`);
    const started = await startDaemon(ctx);
    await waitInitialLiftPass(ctx, started.protecting.at);
    r.nodeStartFloorMs = nodeStartFloor();
    log(`${label}: idle latency (${QUICK_IDLE_SAMPLES} + ${QUICK_IDLE_SAMPLES} samples)`);
    r.idle = await idleLatency(ctx, QUICK_IDLE_SAMPLES);
    r.idleFloor = idleFloor(ctx);
    log(`${label}: burst of ${scaled(FULL.burstVms, scale)} VM backups`);
    r.burst = await burstRenamedIn(ctx);
    r.freshFloor = freshFloor(ctx, r.burst.units);
    const first = await stopDaemon(ctx);
    log(`${label}: catch-up at start`);
    r.catchUp = await catchUp(ctx);
    const second = await stopDaemon(ctx);
    r.catchUp.floorMs = r.nodeStartFloorMs + relockByHand(allPaths(ctx.groups.catchUp));
    r.peakRss = {
      mb: Math.max(first.peakRssMb, second.peakRssMb),
      firstMb: first.peakRssMb,
      secondMb: second.peakRssMb,
    };
    log(`${label}: lift of everything`);
    r.lift = lift(ctx);
    r.floorLock = floor(ctx, '+i');
    r.floorUnlock = floor(ctx, '-i');
    r.lift.entryUnlinkFloorMs = entryUnlinkFloor(ctx, r.lift.unlocked ?? r.lift.units);
    r.lift.floorMs = r.floorUnlock.totalMs + r.lift.entryUnlinkFloorMs;
    r.daemonErrors = ctx.daemonErrors.slice(0, 20).map((l) => ({ msg: l.msg, err: l.err?.message }));
    r.daemonErrorCount = ctx.daemonErrors.length;
    r.loadAvgAtEnd = os.loadavg();
    r.ratios = quickRatios(r);
    return r;
  } finally {
    await stopDaemon(ctx).catch(() => undefined);
    if (args.keepLogs)
      for (const f of fs.readdirSync(ctx.dir).filter((f) => f.endsWith('.log')))
        fs.copyFileSync(path.join(ctx.dir, f), path.join(os.tmpdir(), `xo-bench-${label}-${f}`));
    cleanup(ctx.dir);
  }
}

function quickRatios(r) {
  const of = (x, f) => (f > 0 && Number.isFinite(x) ? Number((x / f).toFixed(2)) : null);
  return {
    idle: of(r.idle['existing VM folder'].medianMs, r.idleFloor.medianMs),
    burst: of(r.burst.drainMs, r.freshFloor.lanes8Ms),
    catchUp: of(r.catchUp.startToLastLockedMs, r.catchUp.floorMs),
    lift: of(r.lift.ms, r.lift.floorMs),
  };
}

function quickTable(r) {
  const idle = r.idle['existing VM folder'];
  const rows = [
    [
      `idle latency, existing VM folder, median of ${idle.samples}`,
      `${fmt(idle.medianMs)} ms`,
      `one chattr of 5 paths: ${fmt(r.idleFloor.medianMs, 1)} ms`,
      r.ratios.idle,
      yes(r.idle.verified),
    ],
    [
      `burst drain: ${fmt(r.burst.backups)} VM backups, ${fmt(r.burst.units)} files written aside, renamed in (in ${fmt(r.burst.writeMs)} ms)`,
      `${fmt(r.burst.drainMs)} ms`,
      `chattr +i of as many fresh files, 8 processes: ${fmt(r.freshFloor.lanes8Ms)} ms`,
      r.ratios.burst,
      yes(r.burst.verified),
    ],
    [
      `catch-up: ${fmt(r.catchUp.backups)} backups, ${fmt(r.catchUp.units)} files, spawn -> last locked`,
      `${fmt(r.catchUp.startToLastLockedMs)} ms`,
      `node -e 0 + chattr +i of the same files: ${fmt(r.catchUp.floorMs)} ms`,
      r.ratios.catchUp,
      yes(r.catchUp.verified),
    ],
    [
      `lift of everything: ${fmt(r.lift.unlocked)} units (CPU: the lift's Node process, not its flag helpers)`,
      `${fmt(r.lift.ms)} ms (CPU ${fmt(r.lift.cpuMs)} ms)`,
      `chattr -i of the same units + unlink of as many entry-sized files: ${fmt(r.floorUnlock.totalMs)} + ${fmt(r.lift.entryUnlinkFloorMs)} ms`,
      r.ratios.lift,
      yes(r.lift.verified),
    ],
    ['daemon peak RSS (VmHWM)', `${fmt(r.peakRss.mb, 1)} MB`, '', '', '-'],
  ];
  return [
    `quick, scale ${r.scale} (load average ${r.loadAvgAtStart.map((x) => x.toFixed(1)).join(' ')} at start)`,
    '',
    '| figure | measured | floor, same run | ratio | all verified |',
    '| --- | ---: | ---: | ---: | :---: |',
    ...rows.map((row) => `| ${row.join(' | ')} |`),
    '',
    `ratios: idle ${r.ratios.idle}, burst ${r.ratios.burst}, catch-up ${r.ratios.catchUp}, lift ${r.ratios.lift}; ` +
      `peak RSS ${fmt(r.peakRss.mb, 1)} MB`,
  ].join('\n');
}

// ---------------------------------------------------------------- memory at scale (--memory)

const RETAINED = 14;
const INDEX_ENTRIES = 1_000_000;

async function memoryRun(scale, args) {
  const label = `m${scale}`;
  const ctx = prepare(scale, label);
  ctx.profile = args.profile;
  const r = { scale, dir: ctx.dir, memory: true };
  try {
    const vms = scaled(FULL.burstVms, scale);
    log(`${label}: a. ${vms} VM folders x ${RETAINED} retained backups, written while the daemon is stopped`);
    const group = newGroup(ctx, 'retained');
    for (let i = 0; i < vms; i++) ctx.vms.push(makeVmFolder(ctx.root, ctx.nextVm++));
    let t0 = hrMs();
    for (let k = 0; k < RETAINED; k++) {
      const dt = nextDatetime(ctx);
      for (const vm of ctx.vms) addBackup(group, writeFlatBackup(vm, dt));
    }
    const retained = {
      vms,
      backups: vms * RETAINED,
      units: allPaths(group).length,
      writeMs: hrMs() - t0,
    };
    r.retained = retained;
    log(`${label}: a. start: the daemon locks all ${retained.units} units`);
    let started = await startDaemon(ctx);
    retained.firstStartToProtectingMs = started.startupMs;
    await waitInitialLiftPass(ctx, started.protecting.at);
    retained.firstFullProofMs = await waitFullProof(started.daemon);
    const count = scaled(FULL.catchUpVms, scale);
    log(`${label}: a. one more backup in ${count} of those folders while it runs`);
    const dt = nextDatetime(ctx);
    retained.burst = await burst(ctx, 'retainedBurst', count, (i) => writeFlatBackup(ctx.vms[i], dt));
    const units = [...allPaths(group), ...allPaths(ctx.groups.retainedBurst)];
    retained.verified = countImmutable(units) === units.length;
    const first = await stopDaemon(ctx);
    retained.peakRssFirstMb = first.peakRssMb;
    log(`${label}: a. restart with everything proven`);
    started = await startDaemon(ctx);
    retained.restartToProtectingMs = started.startupMs;
    await waitInitialLiftPass(ctx, started.protecting.at);
    retained.restartFullProofMs = await waitFullProof(started.daemon);
    const second = await stopDaemon(ctx);
    retained.peakRssRestartMb = second.peakRssMb;
    retained.proven = fs.existsSync(path.join(ctx.indexPath, `proven-${REMOTE_ID}.json`))
      ? fs.statSync(path.join(ctx.indexPath, `proven-${REMOTE_ID}.json`)).size
      : 0;

    const entries = scaled(INDEX_ENTRIES, scale);
    log(`${label}: b. ${entries} generated index entries, all inside their window`);
    t0 = hrMs();
    generateIndex(ctx, entries);
    const index = { entries, generateMs: hrMs() - t0 };
    r.index = index;
    started = await startDaemon(ctx);
    index.startToProtectingMs = started.startupMs;
    index.initialLiftPassMs = await waitInitialLiftPass(ctx, started.protecting.at);
    index.fullProofMs = await waitFullProof(started.daemon);
    const third = await stopDaemon(ctx);
    index.peakRssMb = third.peakRssMb;
    const dry = runCli(ctx, 'lift', [], ['lift', '--config', ctx.config, '--dry-run', '--json']);
    index.liftDryRunMs = dry.ms;
    index.liftDryRunKept = dry.json?.remotes?.[0]?.kept;
    r.daemonErrorCount = ctx.daemonErrors.length;
    r.daemonErrors = ctx.daemonErrors.slice(0, 20).map((l) => ({ msg: l.msg, err: l.err?.message }));
    return r;
  } finally {
    await stopDaemon(ctx).catch(() => undefined);
    if (args.keepLogs)
      for (const f of fs.readdirSync(ctx.dir).filter((f) => f.endsWith('.log')))
        fs.copyFileSync(path.join(ctx.dir, f), path.join(os.tmpdir(), `xo-bench-${label}-${f}`));
    cleanup(ctx.dir);
  }
}

// Entries for units that do not exist, spread over the last 6 days: every bucket is inside the 7-day window, so the
// daemon has nothing to lift and nothing to lock; what it holds is what an index this size costs it.
function generateIndex(ctx, count) {
  const now = Date.now();
  const made = new Set();
  for (let i = 0; i < count; i++) {
    const instant = now - (i % 6) * 86_400_000 - 3600_000;
    const unit = path.join(
      ctx.root,
      'xo-vm-backups',
      fakeUuid(0x40000000 + Math.floor(i / 5), 0),
      'vdis',
      JOB_ID,
      fakeUuid(0x50000000 + i, 1),
      `${xoDatetime(instant)}.vhd`,
    );
    const entry = lockedEntry(
      pendingEntry(
        {
          remote: REMOTE_ID,
          path: unit,
          kind: 'vm',
          recursive: false,
          backup: unit,
          backupInstant: instant,
        },
        instant,
      ),
      {
        dev: '1',
        ino: String(i),
        size: '4096',
        mtimeNs: '0',
        ctimeNs: '0',
        birthtimeNs: '0',
      },
      instant,
    );
    const folder = path.join(ctx.indexPath, REMOTE_ID, entry.day);
    if (!made.has(folder)) {
      fs.mkdirSync(folder, { recursive: true, mode: 0o700 });
      made.add(folder);
    }
    fs.writeFileSync(path.join(folder, createHash('sha256').update(unit).digest('hex')), `${JSON.stringify(entry)}\n`, {
      mode: 0o600,
    });
  }
}

function memoryTable(r) {
  const a = r.retained;
  const b = r.index;
  const rows = [
    [
      `a. ${fmt(a.vms)} VM folders x ${RETAINED} backups (${fmt(a.units)} units): written while stopped`,
      `${fmt(a.writeMs)} ms`,
    ],
    [
      'a. first start, locking all of them: spawn -> "protecting"; full proof after',
      `${fmt(a.firstStartToProtectingMs)}; ${fmt(a.firstFullProofMs)} ms`,
    ],
    [
      `a. then ${fmt(a.burst.backups)} more backups into those folders while it runs: drain`,
      `${fmt(a.burst.drainMs)} ms (written in ${fmt(a.burst.writeMs)} ms)`,
    ],
    ['a. peak RSS of that daemon (VmHWM)', `${fmt(a.peakRssFirstMb, 1)} MB`],
    [
      'a. restart with everything proven: spawn -> "protecting"; full proof after',
      `${fmt(a.restartToProtectingMs)}; ${fmt(a.restartFullProofMs)} ms`,
    ],
    ['a. peak RSS of the restarted daemon (VmHWM)', `${fmt(a.peakRssRestartMb, 1)} MB`],
    ['a. proven-main.json', `${fmt(a.proven / 1024)} KB`],
    ['a. all verified', yes(a.verified)],
    [
      `b. index of ${fmt(b.entries)} more entries (generated in ${fmt(b.generateMs)} ms): spawn -> "protecting"; first lift pass`,
      `${fmt(b.startToProtectingMs)}; ${fmt(b.initialLiftPassMs)} ms`,
    ],
    ['b. peak RSS of that daemon (VmHWM)', `${fmt(b.peakRssMb, 1)} MB`],
    ['b. lift --dry-run on that index', `${fmt(b.liftDryRunMs)} ms (kept ${fmt(b.liftDryRunKept)})`],
  ];
  return [
    `memory at scale ${r.scale}`,
    '',
    '| figure | measured |',
    '| --- | ---: |',
    ...rows.map((row) => `| ${row.join(' | ')} |`),
  ].join('\n');
}

// ---------------------------------------------------------------- cleanup, always

const liveDirs = new Set();
const liveChildren = new Set();
// A daemon killed a moment ago (or its flag helper finishing a batch) may still lock a file after the chattr -R -i:
// cleared and removed again until the folder is gone, for a few seconds at most.
function cleanup(dir) {
  for (let attempt = 0; attempt < 20 && fs.existsSync(dir); attempt++) {
    if (attempt > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 250);
    spawnSync('chattr', ['-R', '-i', dir], { env: ENV, stdio: 'ignore' });
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // A file locked again meanwhile: the next attempt clears it.
    }
  }
  liveDirs.delete(dir);
}
// Every directory prepared is removed at exit, whatever happens.
function onSignal(signal) {
  log(`${signal}: cleaning up`);
  for (const child of liveChildren) child.kill('SIGKILL');
  for (const dir of [...liveDirs].reverse()) {
    if (dir === path.dirname(loopMount ?? '/')) unmountFreshExt4();
    cleanup(dir);
  }
  process.exit(130);
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
// An uncaught failure too: a daemon left running would lock files again after the chattr -R -i (it did, once).
process.on('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL');
  for (const dir of [...liveDirs].reverse()) {
    if (dir === path.dirname(loopMount ?? '/')) unmountFreshExt4();
    cleanup(dir);
  }
});

// ---------------------------------------------------------------- report

const fmt = (x, d = 0) =>
  typeof x === 'number' && Number.isFinite(x)
    ? x.toLocaleString('en-US', {
        minimumFractionDigits: d,
        maximumFractionDigits: d,
      })
    : '-';
const ratio = (x, f) => (f > 0 && Number.isFinite(x) ? `${(x / f).toFixed(1)}x` : '-');
const yes = (b) => (b ? 'yes' : '**NO**');

// --stop-after-lift: the lift runs only.
function liftOnlyTable(r) {
  const rows = [
    ['flat lift, first run', r.lift.flat],
    ...(r.lift.dirs ? [['VHD directories + date folders', r.lift.dirs]] : []),
    ...(r.liftRepeats ?? []).map((run, i) => [`flat lift, run ${i + 2}`, run]),
  ];
  return [
    `scale ${r.scale}, stopped after the lift`,
    '',
    '| lift | units | wall | CPU | discards (disk time) | thread pool |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      ([what, run]) =>
        `| ${what} | ${fmt(run.unlocked)} | ${fmt(run.ms)} ms | ${fmt(run.cpuMs)} ms | ` +
        `${fmt(run.discards)} (${fmt(run.discardDiskMs)} ms) | ${run.threads ?? 'default'} |`,
    ),
  ].join('\n');
}

function table(r) {
  const fl = r.floorLock.byGroup;
  const idleE = r.idle['existing VM folder'];
  const idleN = r.idle['new VM folder'];
  const rows = [
    [
      'start-up, empty remote (spawn -> "protecting")',
      `${fmt(r.startup.ms)} ms`,
      `node -e 0: ${fmt(r.startup.nodeStartFloorMs)} ms`,
      ratio(r.startup.ms, r.startup.nodeStartFloorMs),
      '-',
    ],
    [
      `idle latency, existing VM folder, median / p95 (${idleE.samples})`,
      `${fmt(idleE.medianMs)} / ${fmt(idleE.p95Ms)} ms`,
      `one chattr of 5 paths: ${fmt(r.idleFloor.medianMs, 1)} ms`,
      ratio(idleE.medianMs, r.idleFloor.medianMs),
      yes(r.idle.verified),
    ],
    [
      `idle latency, new VM folder, median / p95 (${idleN.samples})`,
      `${fmt(idleN.medianMs)} / ${fmt(idleN.p95Ms)} ms`,
      '',
      ratio(idleN.medianMs, r.idleFloor.medianMs),
      yes(r.idle.verified),
    ],
    [
      `burst drain: ${fmt(r.burst.backups)} VM backups, ${fmt(r.burst.units)} files (written in ${fmt(r.burst.writeMs)} ms)`,
      `${fmt(r.burst.drainMs)} ms`,
      `${fmt(fl.burst.ms)} ms`,
      ratio(r.burst.drainMs, fl.burst.ms),
      yes(r.burst.verified),
    ],
    [
      `(floor for files just written: chattr +i of ${fmt(r.freshFloor.files)} fresh files, 1 process / 8 processes)`,
      '',
      `${fmt(r.freshFloor.lanes1Ms)} / ${fmt(r.freshFloor.lanes8Ms)} ms`,
      ratio(r.burst.drainMs, r.freshFloor.lanes8Ms),
      '',
    ],
    [
      `VHD directories: ${fmt(r.vhdDirs.backups * DISKS_PER_VM)} dirs, ${fmt(r.vhdDirs.files)} files (written in ${fmt(r.vhdDirs.writeMs)} ms)`,
      `${fmt(r.vhdDirs.drainMs)} ms`,
      `${fmt(fl.vhdDirs.ms)} ms`,
      ratio(r.vhdDirs.drainMs, fl.vhdDirs.ms),
      yes(r.vhdDirs.verified),
    ],
    [
      `config + pool metadata: ${fmt(r.metadata.backups)} date folders`,
      `${fmt(r.metadata.drainMs)} ms`,
      `${fmt(fl.metadata.ms)} ms`,
      ratio(r.metadata.drainMs, fl.metadata.ms),
      yes(r.metadata.verified),
    ],
    [
      `catch-up at start: ${fmt(r.catchUp.backups)} backups, ${fmt(r.catchUp.units)} files (spawn -> last locked)`,
      `${fmt(r.catchUp.startToLastLockedMs)} ms`,
      `${fmt(fl.catchUp.ms)} ms`,
      ratio(r.catchUp.startToLastLockedMs, fl.catchUp.ms),
      yes(r.catchUp.verified),
    ],
    [
      `(catch-up: daemon's first log line -> last locked; spawn -> "protecting"; full proof of every backup after)`,
      `${fmt(r.catchUp.firstLineToLastLockedMs)}; ${fmt(r.catchUp.startToProtectingMs)}; ${fmt(r.catchUp.fullProofMs)} ms`,
      `node -e 0: ${fmt(r.startup.nodeStartFloorMs)} ms`,
      '',
      '',
    ],
    [
      `lift of everything: ${fmt(r.lift.unlocked)} units (the two runs below; CPU: the lift's Node process, not its flag helpers)`,
      `${fmt(r.lift.ms)} ms (CPU ${fmt(r.lift.cpuMs)} ms)`,
      `${fmt(r.floorUnlock.totalMs)} ms`,
      ratio(r.lift.ms, r.floorUnlock.totalMs),
      yes(r.lift.verified),
    ],
    ...(r.lift.dirs
      ? [
          [
            `(lift, the issue's workload: ${fmt(r.lift.flat.unlocked)} flat units, one run)`,
            `${fmt(r.lift.flat.ms)} ms (CPU ${fmt(r.lift.flat.cpuMs)} ms)`,
            `${fmt(flatFloorMs(r.floorUnlock))} ms`,
            ratio(r.lift.flat.ms, flatFloorMs(r.floorUnlock)),
            '',
          ],
          [
            `(lift, VHD directories + date folders: ${fmt(r.lift.dirs.unlocked)} units, one run)`,
            `${fmt(r.lift.dirs.ms)} ms (CPU ${fmt(r.lift.dirs.cpuMs)} ms)`,
            `${fmt(r.floorUnlock.totalMs - flatFloorMs(r.floorUnlock))} ms`,
            ratio(r.lift.dirs.ms, r.floorUnlock.totalMs - flatFloorMs(r.floorUnlock)),
            '',
          ],
        ]
      : []),
    [
      `rebuild-index: ${fmt(r.rebuild.foldersScanned)} folders, ${fmt(r.rebuild.indexed)} entries`,
      `${fmt(r.rebuild.ms)} ms`,
      `lsattr -d: ${fmt(r.rebuild.lsattrFloorMs)} ms`,
      ratio(r.rebuild.ms, r.rebuild.lsattrFloorMs),
      yes(r.rebuild.indexed === r.rebuild.units),
    ],
    ['daemon peak RSS (VmHWM)', `${fmt(r.peakRss.mb, 1)} MB`, '', '', '-'],
    ...(r.peakRss.firstDaemonAfterMb
      ? [
          [
            '(peak so far after idle latency / burst / VHD directories; the catch-up daemon)',
            `${['idle', 'burst', 'vhdDirs'].map((k) => fmt(r.peakRss.firstDaemonAfterMb[k], 1)).join(' / ')}; ${fmt(r.peakRss.afterCatchUpMb, 1)} MB`,
            '',
            '',
            '',
          ],
        ]
      : []),
    [
      `index per entry (${fmt(r.index.entries)} entries)`,
      `${fmt(r.index.bytesPerEntry)} B (allocated ${fmt(r.index.allocatedPerEntry)} B)`,
      '',
      '',
      '-',
    ],
    [
      `floor totals: chattr +i / -i of ${fmt(r.lift.units)} units`,
      `${fmt(r.floorLock.totalMs)} / ${fmt(r.floorUnlock.totalMs)} ms`,
      '',
      '',
      '-',
    ],
    [
      `index floor: create / unlink ${fmt(r.indexFloor.files)} empty files by hand`,
      `${fmt(r.indexFloor.createMs)} / ${fmt(r.indexFloor.unlinkMs)} ms (${fmt(r.indexFloor.createUsPerFile)} us a create)`,
      '',
      '',
      '-',
    ],
  ];
  return [
    `scale ${r.scale}`,
    '',
    '| figure | measured | floor (batched by hand) | ratio | all verified |',
    '| --- | ---: | ---: | ---: | :---: |',
    ...rows.map((row) => `| ${row.join(' | ')} |`),
  ].join('\n');
}

function growthTable(runs) {
  const figures = [
    ['burst drain (ms)', (r) => r.burst.drainMs],
    ['VHD directories drain (ms)', (r) => r.vhdDirs.drainMs],
    ['catch-up, spawn -> last locked (ms)', (r) => r.catchUp.startToLastLockedMs],
    ['lift (ms)', (r) => r.lift.ms],
    ["lift, the issue's workload (ms)", (r) => r.lift.flat.ms],
    ['rebuild-index (ms)', (r) => r.rebuild.ms],
    ['floor chattr +i, all (ms)', (r) => r.floorLock.totalMs],
    ['floor chattr -i, all (ms)', (r) => r.floorUnlock.totalMs],
    ['units', (r) => r.lift.units],
    ['peak RSS (MB)', (r) => r.peakRss.mb],
  ];
  const head = `| figure | ${runs.map((r) => `scale ${r.scale}`).join(' | ')} | 2x / 1x | 4x / 1x |`;
  const lines = [head, `| --- |${runs.map(() => ' ---: |').join('')} ---: | ---: |`];
  for (const [name, get] of figures) {
    const v = runs.map(get);
    lines.push(
      `| ${name} | ${v.map((x) => fmt(x, name.includes('MB') ? 1 : 0)).join(' | ')} | ${(v[1] / v[0]).toFixed(2)} | ${(v[2] / v[0]).toFixed(2)} |`,
    );
  }
  return lines.join('\n');
}

// Each number the median of the runs' same figure; "verified" only if every run verified; the rest from the first run.
function medianOf(same) {
  const merge = (values) => {
    const first = values[0];
    if (typeof first === 'number') return median(values.filter((v) => typeof v === 'number' && Number.isFinite(v)));
    if (typeof first === 'boolean') return values.every(Boolean);
    if (first && typeof first === 'object' && !Array.isArray(first))
      return Object.fromEntries(Object.keys(first).map((k) => [k, merge(values.map((v) => v?.[k]))]));
    return first;
  };
  return merge(same);
}

function machine() {
  return {
    cores: os.cpus().length,
    cpu: os.cpus()[0]?.model,
    memGb: Number((os.totalmem() / 1024 ** 3).toFixed(1)),
    kernel: os.release(),
    node: process.version,
    loadAvgAtEnd: os.loadavg(),
    tmpFs: spawnSync('df', ['-T', os.tmpdir()], { encoding: 'utf8' }).stdout.split('\n')[1]?.split(/\s+/)[1],
    benchFs: loopMount ? 'fresh ext4 image, loop-mounted' : 'tmp',
  };
}

let benchArgs;

async function main() {
  const args = parseArgs(process.argv.slice(2));
  benchArgs = args;
  if (process.getuid?.() !== 0) throw new Error('run as root: the benchmark runs real chattr');
  // The lift step moves the clock 8 days ahead for the lift CLI alone; without faketime it would measure nothing.
  if (spawnSync('faketime', ['-f', '+0d', 'true']).status !== 0)
    throw new Error('faketime is missing: install it (Debian: apt-get install faketime), then run the benchmark again');
  if (!fs.existsSync(path.join(REPO, 'dist', 'cli', 'main.js'))) throw new Error('build first: npm run build');
  if (args.fs === 'ext4-loop') mountFreshExt4();
  const scales = args.growth ? [args.growthBase, 2 * args.growthBase, 4 * args.growthBase] : [args.scale];
  const runs = [];
  const repeats = [];
  for (const scale of scales) {
    const same = [];
    for (let i = 0; i < args.runs; i++) {
      const r = args.memory
        ? await memoryRun(scale, args)
        : args.quick
          ? await quickRun(scale, args)
          : await runOnce(scale, args);
      same.push(r);
      if (r.stoppedAfterLift) {
        console.log(liftOnlyTable(r) + '\n');
        continue;
      }
      console.log((args.memory ? memoryTable(r) : args.quick ? quickTable(r) : table(r)) + '\n');
    }
    const r = same.length === 1 ? same[0] : medianOf(same);
    if (same.length > 1) {
      console.log(
        `medians of ${same.length} runs:\n` +
          (args.memory ? memoryTable(r) : args.quick ? quickTable(r) : table(r)) +
          '\n',
      );
      repeats.push(same);
    }
    runs.push(r);
  }
  if (args.growth && !args.memory) console.log(growthTable(runs) + '\n');
  const date = new Date().toISOString();
  const out =
    args.out ??
    path.join(
      REPO,
      'bench',
      'results',
      `bench-${date.replace(/[:.]/g, '-')}${args.growth ? '-growth' : args.quick ? '-quick' : ''}.json`,
    );
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(
    out,
    JSON.stringify(
      {
        date,
        machine: machine(),
        args,
        runs,
        ...(repeats.length > 0 ? { repeats } : {}),
      },
      null,
      2,
    ) + '\n',
  );
  log(`wrote ${out}`);
  unmountFreshExt4();
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
