import { appendFile, mkdir, mkdtemp, readdir, realpath, rm, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { assertCapabilities } from '../attributes/capability.js';
import { IoctlAdapter } from '../attributes/ioctl.js';
import { validateConfig } from '../config/validate.js';
import { configInvalid } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { Daemon } from '../daemon/daemon.js';
import {
  writeConfigBackup,
  writePoolBackup,
  writeVmBackup,
  xoDatetime,
  type WrittenBackup,
} from '../demo/sample-remote.js';
import { errnoCode } from '../errors.js';
import { openRemoteContext } from '../context/open.js';
import { liftRemote } from '../lift/apply.js';
import { createLogger } from '../log/logger.js';
import { EXIT } from './exit-codes.js';
import { exitCodeOfSignal } from './interrupt.js';

const HOUR = 60 * 60 * 1000;

// What every step of the demo works on.
interface Scene {
  base: string;
  root: string;
  attributes: IoctlAdapter;
  out: (line: string) => void;
  // Aborted by SIGINT or SIGTERM: each step stops at its next check, and the folder is cleaned up all the same.
  interrupted: AbortSignal;
}

// `demo`: the main job on an embedded default. A sample remote in a temp folder is protected by the real daemon and
// real immutable flag, a delete is refused, and everything is unlocked and removed again, also when interrupted.
export async function runDemo(
  options: { keep: boolean },
  out: (line: string) => void,
  interrupted: AbortSignal = new AbortController().signal,
): Promise<number> {
  assertCapabilities();
  const base = await mkdtemp(path.join(os.tmpdir(), 'xo-immutable-demo-'));
  const scene: Scene = { base, root: path.join(base, 'remote'), attributes: new IoctlAdapter(), out, interrupted };
  // The daemon's log lines (pino writes one per call), to show what journalctl would.
  const logLines: string[] = [];
  const sink = { write: (line: string) => logLines.push(line.trimEnd()) };
  const config = demoConfig(scene);
  const daemon = new Daemon({ config, log: createLogger('info', sink), attributes: scene.attributes });
  let outcome: { code: number } | { error: unknown };
  try {
    outcome = { code: await showEverything(scene, config, daemon, logLines) };
  } catch (error) {
    if (!interrupted.aborted) outcome = { error };
    else {
      out(`Interrupted by ${String(interrupted.reason)}: stopping the daemon, then cleaning up.`);
      outcome = { code: exitCodeOfSignal(interrupted.reason) };
    }
  }
  await daemon.stop();
  const cleaned = await cleanUp(scene, options.keep);
  if ('error' in outcome) throw outcome.error;
  return cleaned ? outcome.code : EXIT.failure;
}

async function showEverything(scene: Scene, config: Config, daemon: Daemon, logLines: string[]): Promise<number> {
  const { out, interrupted } = scene;
  out(`Sample XO remote: ${scene.root} (backups stay immutable for 7 days)`);
  await showCatchUp(scene, daemon);
  interrupted.throwIfAborted();
  const { victim, lockedIn } = await showFreshBackups(scene);
  interrupted.throwIfAborted();
  await showWhatStaysMutable(scene, victim);
  await showIndex(scene, logLines);
  await daemon.stop();
  interrupted.throwIfAborted();
  const liftFailed = await showLift(scene, config, victim.label);
  return lockedIn === undefined || liftFailed ? EXIT.failure : EXIT.ok;
}

function demoConfig({ base, root }: Scene): Config {
  const result = validateConfig({
    indexPath: path.join(base, 'index'),
    remotes: { demo: { root, immutabilityDuration: '7d' } },
  });
  if (!result.ok) throw configInvalid('(embedded demo config)', result.problems);
  return result.config;
}

// Steps 1 and 2: backups written while the daemon is stopped are locked at start, unless already expired.
async function showCatchUp({ root, attributes, out, interrupted }: Scene, daemon: Daemon): Promise<void> {
  const now = Date.now();
  await mkdir(root);
  const early = await writeVmBackup(root, {
    vm: 'demo-vm-written-while-stopped',
    datetime: xoDatetime(now - 2 * HOUR),
    disks: [{ type: 'flat' }, { type: 'flat' }],
  });
  const expired = await writeVmBackup(root, { vm: 'demo-vm-expired', datetime: xoDatetime(now - 8 * 24 * HOUR) });
  out('1. Before the daemon starts: one VM backup inside its window, one from 8 days ago (already past the 7 days).');
  interrupted.throwIfAborted();
  await daemon.start();
  out(
    `2. Daemon started; start-up catch-up locked ${await countImmutable(attributes, early.units)} ` +
      `of ${early.units.length} units of the waiting backup, ` +
      `and none of the expired one (${await countImmutable(attributes, expired.units)} locked).`,
  );
}

// Step 3: new backups of every kind are locked while the daemon runs; the VM backup is then attacked.
async function showFreshBackups({ root, attributes, out, interrupted }: Scene): Promise<{
  victim: WrittenBackup;
  lockedIn: number | undefined;
}> {
  const written = Date.now();
  const fresh = [
    await writeVmBackup(root, {
      vm: 'demo-vm',
      datetime: xoDatetime(written),
      disks: [{ type: 'vhd-directory', blocks: 20 }, { type: 'flat' }],
    }),
    await writeVmBackup(root, { vm: 'demo-vm-full', datetime: xoDatetime(written), xva: true, disks: [] }),
    await writeConfigBackup(root, 'demo-schedule', xoDatetime(written)),
    await writePoolBackup(root, 'demo-schedule', 'demo-pool', xoDatetime(written)),
  ];
  const units = fresh.flatMap((b) => b.units);
  const lockedIn = await waitUntilImmutable(attributes, units, 10_000, interrupted);
  out(
    '3. XO wrote 4 new backups (VM with a VHD directory, full VM, config, pool metadata): ' +
      `all ${units.length} units immutable ` +
      (lockedIn === undefined ? 'NOT within 10 s' : `${lockedIn} ms after the last json was written`) +
      '.',
  );
  return { victim: fresh[0]!, lockedIn };
}

// Steps 4 and 5: the backup refuses a delete and an append; the cache XO keeps writing does not.
async function showWhatStaysMutable({ base, out }: Scene, victim: WrittenBackup): Promise<void> {
  const label = victim.label;
  out("4. Someone holding XO's credentials tries to destroy a backup:");
  out(`   rm ${path.relative(base, label)}: ${await refusal(() => unlink(label))}`);
  out(`   append to ${path.relative(base, label)}: ${await refusal(() => appendFile(label, 'ransom'))}`);
  const cache = victim.neverLocked[0] ?? '';
  out(
    `5. What XO must keep writing stays mutable: append to ${path.relative(base, cache)}: ` +
      (await refusal(() => appendFile(cache, 'x'))),
  );
}

// Steps 6 and 7: the index entries and the daemon's first lock lines.
async function showIndex({ base, out }: Scene, logLines: readonly string[]): Promise<void> {
  const indexDays = await readdir(path.join(base, 'index', 'demo'));
  out(
    `6. Index entries (written before each lock) under ${path.join(base, 'index', 'demo')}: ` +
      `days ${indexDays.join(', ')}.`,
  );
  out('7. What journalctl would show (first lock lines):');
  for (const line of logLines.filter((l) => l.includes('"msg":"locked')).slice(0, 3)) out(`   ${line}`);
}

// Step 8: what `lift` does once the window has passed, with a clock 8 days ahead instead of waiting a week.
// True when something could not be unlocked.
async function showLift({ base, attributes, out }: Scene, config: Config, victim: string): Promise<boolean> {
  const context = await openRemoteContext(config.remotes[0]!, config.indexPath);
  const lifted = await liftRemote(context, attributes, {
    now: Date.now() + 8 * 24 * HOUR,
    dryRun: false,
    all: false,
  });
  out(
    `8. Eight days later (a simulated clock), the lift pass unlocks ${lifted.unlocked.length} unit(s) ` +
      `whose window has passed; now: rm ${path.relative(base, victim)}: ${await refusal(() => unlink(victim))}`,
  );
  return lifted.failed.length > 0;
}

// False when the folder could not be removed; the one command that finishes the job is printed either way.
async function cleanUp({ base, attributes, out }: Scene, keep: boolean): Promise<boolean> {
  const finish = `chattr -R -i ${base} && rm -rf ${base}`;
  if (keep) {
    out(`Kept ${base}. To remove it: ${finish}`);
    return true;
  }
  try {
    await attributes.setImmutable(
      { root: base, realRoot: await realpath(base) },
      [{ path: base, recursive: true }],
      false,
    );
    await rm(base, { recursive: true, force: true });
  } catch (error) {
    out(`Could not clean up ${base} (${errnoCode(error) ?? String(error)}). To finish: ${finish}`);
    return false;
  }
  out(`Cleaned up: unlocked and removed ${base}.`);
  return true;
}

// Walked from the folder holding them all, by its real path (os.tmpdir() may be a link).
async function countImmutable(attributes: IoctlAdapter, paths: readonly string[]): Promise<number> {
  let base = path.dirname(paths[0] ?? '/');
  while (!paths.every((p) => p.startsWith(`${base}/`)) && base !== '/') base = path.dirname(base);
  const within = { root: base, realRoot: await realpath(base) };
  return [...(await attributes.isImmutable(within, paths)).values()].filter((v) => v === true).length;
}

async function waitUntilImmutable(
  attributes: IoctlAdapter,
  paths: readonly string[],
  timeoutMs: number,
  interrupted: AbortSignal,
): Promise<number | undefined> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    interrupted.throwIfAborted();
    if ((await countImmutable(attributes, paths)) === paths.length) return Date.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return undefined;
}

async function refusal(attempt: () => Promise<unknown>): Promise<string> {
  try {
    await attempt();
    return 'allowed';
  } catch (error) {
    return `refused (${errnoCode(error) ?? String(error)})`;
  }
}
