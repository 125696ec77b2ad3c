import { spawn } from 'node:child_process';
import { stopBeforeCleanup } from './remote.js';

// An attacker's process racing the daemon's settle of a link at `<vhd>/blocks/<n>` (session 18's review): it watches
// the VDI folder, and at the first aside link there (the settle shows itself), moves the folder just put back to
// `data/<hidden>` and plants a relative link to it in its place again, before the directory is locked.
const ATTACKER = `
const fs = require('node:fs'); const path = require('node:path');
const [vdi, vhd, n, hidden] = process.argv.slice(1);
const at = path.join(vhd, 'blocks', n);
let done = false;
const replant = () => {
  if (done) return;
  if (!fs.readdirSync(vdi).some((name) => name.includes('.linked-'))) return;
  if (fs.lstatSync(at, { throwIfNoEntry: false })?.isDirectory() !== true) return;
  done = true;
  try {
    fs.renameSync(at, path.join(vdi, 'data', hidden));
    fs.symlinkSync(path.join('..', '..', hidden), at);
    process.stdout.write('replanted\\n');
  } catch (e) { process.stdout.write('failed ' + e.code + '\\n'); }
  process.exit(0);
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
export async function startReplanter(vdi: string, vhd: string, n: string, hidden: string): Promise<Replanter> {
  const attacker = spawn(process.execPath, ['-e', ATTACKER, vdi, vhd, n, hidden], {
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
