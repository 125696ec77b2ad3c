// What a running lift waits on, sampled from /proc while the benchmark runs it (a diagnosis aid, not part of the bench):
//   node bench/lift-watch.mjs [--every MS] [--out FILE] [--match TEXT]
// Waits for a node process whose command line holds `lift` and `--accept-clock` (the bench's lift runs; --match TEXT
// to pick another), then until it exits samples every MS (default 50): each of its threads' state and wchan (with the
// kernel stack's top frames for a thread in D state), its flag helpers' (perl children) states, and per second the
// disk's counters (/sys/block/<dev>/stat: discards and their time, writes, flushes) and /proc/pressure/io. Prints
// a summary per lift run: the share of samples in each (thread, state, wchan), the main thread's, and the disk's
// totals; keeps watching for the next run until killed (or --runs N runs were seen).
import fs from 'node:fs';

const args = { every: 50, out: undefined, match: '--accept-clock', runs: Infinity, dev: 'vda' };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--every') args.every = Number(process.argv[++i]);
  else if (a === '--out') args.out = process.argv[++i];
  else if (a === '--match') args.match = process.argv[++i];
  else if (a === '--runs') args.runs = Number(process.argv[++i]);
  else if (a === '--dev') args.dev = process.argv[++i];
  else throw new Error(`unknown argument ${a}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const read = (file) => {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
};
const now = () => new Date().toISOString().slice(11, 23);

function findLift() {
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    const cmd = read(`/proc/${pid}/cmdline`)?.split('\0') ?? [];
    if (!/node$/.test(cmd[0] ?? '')) continue;
    if (cmd.includes('lift') && cmd.some((c) => c.includes(args.match)))
      return { pid: Number(pid), cmd: cmd.join(' ') };
  }
  return undefined;
}

// state (field 3) and utime+stime (14, 15) of /proc/.../stat; comm may hold spaces, so split after its ')'.
function statOf(file) {
  const text = read(file);
  if (text === undefined) return undefined;
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return {
    comm: text.slice(text.indexOf('(') + 1, text.lastIndexOf(')')),
    state: rest[0],
    ppid: Number(rest[1]),
    cpu: Number(rest[11]) + Number(rest[12]),
  };
}

function childrenOf(pid) {
  const out = [];
  for (const d of fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    const s = statOf(`/proc/${d}/stat`);
    if (s?.ppid === pid) out.push({ pid: Number(d), ...s });
  }
  return out;
}

function diskStat() {
  const f = (read(`/sys/block/${args.dev}/stat`) ?? '').trim().split(/\s+/).map(Number);
  return {
    reads: f[0],
    readMs: f[3],
    writes: f[4],
    writeMs: f[7],
    inFlight: f[8],
    ioTicks: f[9],
    discards: f[11],
    discardSectors: f[13],
    discardMs: f[14],
    flushes: f[15],
    flushMs: f[16],
  };
}
// The machine's CPU ticks (/proc/stat): user+nice, system (with irq), idle, iowait, steal (a VM's vCPU not run).
function cpuTicks() {
  const f = (read('/proc/stat') ?? '').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return { user: f[0] + f[1], system: f[2] + f[5] + f[6], idle: f[3], iowait: f[4], steal: f[7] };
}
const psi = () => {
  const t = read('/proc/pressure/io') ?? '';
  const total = (kind) => Number(t.match(new RegExp(`^${kind} .*total=(\\d+)`, 'm'))?.[1] ?? NaN);
  return { some: total('some'), full: total('full') };
};

async function watchOne(lift) {
  const t0 = Date.now();
  const counts = new Map();
  const stacks = new Map();
  const helperStates = new Map();
  const timeline = [];
  let samples = 0;
  const disk0 = diskStat();
  const psi0 = psi();
  const cpu0Machine = cpuTicks();
  let lastCpu = cpu0Machine;
  let lastDisk = disk0;
  let lastSecond = t0;
  let main = { R: 0, S: 0, D: 0, other: 0 };
  let cpu0;
  let cpuLast;
  for (;;) {
    const tasks = fs.existsSync(`/proc/${lift.pid}/task`) ? fs.readdirSync(`/proc/${lift.pid}/task`) : [];
    if (tasks.length === 0) break;
    samples++;
    let inD = 0;
    for (const tid of tasks) {
      const s = statOf(`/proc/${lift.pid}/task/${tid}/stat`);
      if (s === undefined) continue;
      const wchan = read(`/proc/${lift.pid}/task/${tid}/wchan`) ?? '?';
      const isMain = Number(tid) === lift.pid;
      if (isMain) {
        main[s.state in main ? s.state : 'other']++;
        cpuLast = s.cpu;
        cpu0 ??= s.cpu;
      }
      const key = `${isMain ? 'MAIN' : s.comm}\t${s.state}\t${s.state === 'R' ? '-' : wchan}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
      if (s.state === 'D') {
        inD++;
        const stack = (read(`/proc/${lift.pid}/task/${tid}/stack`) ?? '')
          .split('\n')
          .map((l) => l.replace(/^\[<[0-9a-f]+>\] /, '').replace(/\+0x.*$/, ''))
          .filter(Boolean)
          .slice(0, 8)
          .join(' < ');
        const sk = `${isMain ? 'MAIN' : s.comm}: ${stack}`;
        stacks.set(sk, (stacks.get(sk) ?? 0) + 1);
      }
    }
    for (const child of childrenOf(lift.pid)) {
      if (child.comm !== 'perl') continue;
      const wchan = read(`/proc/${child.pid}/wchan`) ?? '?';
      const key = `${child.state}\t${child.state === 'R' ? '-' : wchan}`;
      helperStates.set(key, (helperStates.get(key) ?? 0) + 1);
    }
    const t = Date.now();
    if (t - lastSecond >= 1000) {
      const d = diskStat();
      const c = cpuTicks();
      const was = lastCpu;
      const dc = (k) => c[k] - was[k];
      lastCpu = c;
      timeline.push(
        `${now()} +${((t - t0) / 1000).toFixed(1)}s threads-in-D ${inD} main-cpu ${cpuLast - cpu0} ticks; disk: ` +
          `discards ${d.discards - lastDisk.discards} (${d.discardMs - lastDisk.discardMs} ms), ` +
          `writes ${d.writes - lastDisk.writes} (${d.writeMs - lastDisk.writeMs} ms), flushes ${d.flushes - lastDisk.flushes}, in flight ${d.inFlight}; ` +
          `cpu ticks: user ${dc('user')} sys ${dc('system')} idle ${dc('idle')} iowait ${dc('iowait')} steal ${dc('steal')}`,
      );
      lastDisk = d;
      lastSecond = t;
    }
    await sleep(args.every);
  }
  const disk1 = diskStat();
  const psi1 = psi();
  const cpu1Machine = cpuTicks();
  const dm = (k) => cpu1Machine[k] - cpu0Machine[k];
  const wallMs = Date.now() - t0;
  const pct = (n, of) => `${((100 * n) / of).toFixed(1)} %`;
  const lines = [`# lift pid ${lift.pid}, ${wallMs} ms watched, ${samples} samples (${lift.cmd})`];
  lines.push(
    `main thread: R ${pct(main.R, samples)}, S ${pct(main.S, samples)}, D ${pct(main.D, samples)}, other ${pct(main.other, samples)}`,
  );
  lines.push('## thread\tstate\twchan\tsamples (share of samples)');
  for (const [k, n] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, 30))
    lines.push(`${k}\t${n} (${pct(n, samples)})`);
  lines.push('## kernel stacks of threads in D state (top frames), samples');
  for (const [k, n] of [...stacks].sort((a, b) => b[1] - a[1]).slice(0, 15)) lines.push(`${n}\t${k}`);
  lines.push('## flag helpers (perl children): state\twchan\tsamples');
  for (const [k, n] of [...helperStates].sort((a, b) => b[1] - a[1]).slice(0, 10)) lines.push(`${k}\t${n}`);
  const dd = (k) => disk1[k] - disk0[k];
  lines.push(
    `## disk ${args.dev} over the run: discards ${dd('discards')} (${dd('discardSectors') / 2} KiB, ${dd('discardMs')} ms in all), ` +
      `writes ${dd('writes')} (${dd('writeMs')} ms), flushes ${dd('flushes')} (${dd('flushMs')} ms), reads ${dd('reads')}, busy ${dd('ioTicks')} ms; ` +
      `io pressure: some ${((psi1.some - psi0.some) / 1000).toFixed(0)} ms, full ${((psi1.full - psi0.full) / 1000).toFixed(0)} ms`,
  );
  lines.push(
    `## machine CPU ticks over the run (2 CPUs, 100 a second each): user ${dm('user')}, system ${dm('system')}, ` +
      `idle ${dm('idle')}, iowait ${dm('iowait')}, steal ${dm('steal')}; the lift's main thread: ${cpuLast - cpu0}`,
  );
  lines.push('## per second', ...timeline);
  return lines.join('\n');
}

let seen = 0;
while (seen < args.runs) {
  const lift = findLift();
  if (lift === undefined) {
    await sleep(20);
    continue;
  }
  const report = await watchOne(lift);
  seen++;
  console.log(report + '\n');
  if (args.out) fs.appendFileSync(args.out, report + '\n\n');
}
