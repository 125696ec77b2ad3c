import { spawn } from 'node:child_process';
import { stopBeforeCleanup } from './remote.js';

// An attacker's process racing the daemon's settle of a link at `<vhd>/blocks/<n>` (session 18's review): it watches
// the VDI folder, and at the first aside link there (the settle shows itself), moves the folder just put back to
// `data/<hidden>` and plants a relative link to it in its place again, before the directory is locked. `dangling`
// (session 19's review): the folder is kept at `data/<hidden>.away`, the link leading nowhere, until `blocks/0` is
// locked (the helper has gone past the link), then moved to `data/<hidden>`.
const ATTACKER = `
const fs = require('node:fs'); const path = require('node:path');
const [vdi, vhd, n, hidden, dangling] = process.argv.slice(1);
const at = path.join(vhd, 'blocks', n);
const away = path.join(vdi, 'data', dangling === 'dangling' ? hidden + '.away' : hidden);
const locked = (p) => { try { const t = new Date(); fs.utimesSync(p, t, t); return false } catch (e) { return e.code === 'EPERM' } };
let phase = 0;
const replant = () => {
  try {
    if (phase === 0) {
      if (!fs.readdirSync(vdi).some((name) => name.includes('.linked-'))) return;
      if (fs.lstatSync(at, { throwIfNoEntry: false })?.isDirectory() !== true) return;
      phase = 1;
      fs.renameSync(at, away);
      fs.symlinkSync(path.join('..', '..', hidden), at);
      if (dangling !== 'dangling') { process.stdout.write('replanted\\n'); process.exit(0); }
    }
    if (phase === 1 && locked(path.join(vhd, 'blocks', '0'))) {
      fs.renameSync(away, path.join(vdi, 'data', hidden));
      process.stdout.write('replanted\\n');
      process.exit(0);
    }
  } catch (e) { process.stdout.write('failed ' + e.code + '\\n'); process.exit(0); }
};
fs.watch(vdi, replant);
setInterval(replant, 1);
process.stdout.write('watching\\n');
`;

export interface Replanter {
  // What the attacker said once done: "replanted", or "failed <code>".
  done: Promise<string>;
}

// Resolves once the attacker watches; stopped before the test's cleanup.
export async function startReplanter(
  vdi: string,
  vhd: string,
  n: string,
  hidden: string,
  options: { dangling?: boolean } = {},
): Promise<Replanter> {
  const args = [vdi, vhd, n, hidden, options.dangling === true ? 'dangling' : ''];
  const attacker = spawn(process.execPath, ['-e', ATTACKER, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let said = '';
  const exited = new Promise<void>((resolve) => attacker.once('exit', () => resolve()));
  stopBeforeCleanup(async () => {
    attacker.kill();
    await exited;
  });
  await new Promise<void>((resolve, reject) => {
    attacker.stdout.on('data', (chunk: Buffer) => {
      said += chunk.toString();
      if (said.startsWith('watching\n')) resolve();
    });
    attacker.once('exit', () => reject(new Error(`the attacker's process ended: ${said}`)));
  });
  return { done: exited.then(() => said.slice('watching\n'.length).trim()) };
}
