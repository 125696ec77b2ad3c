// What unlinking index-entry-sized files costs on a filesystem, by how many are in flight (a diagnosis aid):
//   node bench/unlink-cost.mjs [--dir DIR] [--files N] [--in-flight 1,4,16,64] [--rounds R] [--dev vda]
// Per round and per in-flight count: N files of 770 bytes written and synced (untimed), then unlinked through
// fs/promises with that many in flight, in a child whose thread pool has as many threads (UV_THREADPOOL_SIZE), timed;
// the disk's discard counters (/sys/block/<dev>/stat) read around it. The counts alternate within a round.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SELF = fileURLToPath(import.meta.url);

if (process.argv[2] === '--child') {
  const [, , , folder, count, inFlight] = process.argv;
  const { unlink } = await import('node:fs/promises');
  const names = fs.readdirSync(folder);
  let next = 0;
  const t0 = process.hrtime.bigint();
  const lane = async () => {
    while (next < names.length) await unlink(path.join(folder, names[next++]));
  };
  await Promise.all(Array.from({ length: Math.min(Number(inFlight), Number(count)) }, lane));
  console.log(String(Number(process.hrtime.bigint() - t0) / 1e6));
  process.exit(0);
}

const args = { dir: '/tmp', files: 4096, inFlight: [1, 4, 16, 64], rounds: 2, dev: 'vda' };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--dir') args.dir = process.argv[++i];
  else if (a === '--files') args.files = Number(process.argv[++i]);
  else if (a === '--in-flight') args.inFlight = process.argv[++i].split(',').map(Number);
  else if (a === '--rounds') args.rounds = Number(process.argv[++i]);
  else if (a === '--dev') args.dev = process.argv[++i];
  else throw new Error(`unknown argument ${a}`);
}

const disk = () => {
  const f = fs.readFileSync(`/sys/block/${args.dev}/stat`, 'utf8').trim().split(/\s+/).map(Number);
  return { discards: f[11], discardMs: f[14] };
};

const base = fs.mkdtempSync(path.join(args.dir, 'unlink-cost-'));
try {
  const text = 'x'.repeat(770);
  console.log('| round | in flight | files | unlink ms | us a file | discards | disk ms a discard |');
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (let round = 1; round <= args.rounds; round++)
    for (const inFlight of args.inFlight) {
      const folder = path.join(base, `r${round}-${inFlight}`);
      fs.mkdirSync(folder);
      for (let i = 0; i < args.files; i++) fs.writeFileSync(path.join(folder, `e${i}.json`), text);
      spawnSync('sync', ['-f', folder]);
      const before = disk();
      const child = spawnSync(process.execPath, [SELF, '--child', folder, String(args.files), String(inFlight)], {
        env: { ...process.env, UV_THREADPOOL_SIZE: String(Math.max(4, Math.min(inFlight, 1024))) },
        encoding: 'utf8',
      });
      const after = disk();
      const ms = Number(child.stdout.trim());
      const discards = after.discards - before.discards;
      const perDiscard = discards > 0 ? ((after.discardMs - before.discardMs) / discards).toFixed(2) : '-';
      console.log(
        `| ${round} | ${inFlight} | ${args.files} | ${ms.toFixed(0)} | ${((1000 * ms) / args.files).toFixed(0)} | ${discards} | ${perDiscard} |`,
      );
      fs.rmdirSync(folder);
    }
} finally {
  fs.rmSync(base, { recursive: true, force: true });
}
