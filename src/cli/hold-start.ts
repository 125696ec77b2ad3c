import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { IoctlAdapter } from '../attributes/ioctl.js';
import type { Clock } from '../clock.js';
import { loadConfig } from '../config/load.js';
import { openRemoteContext } from '../context/open.js';
import type { RemoteContext } from '../context/remote-context.js';
import { AppError } from '../errors.js';
import { holdJson, newHold, parseHoldDuration, parseVm, type Hold } from '../holds/rules.js';
import { countByDay } from '../lift/report.js';
import { liftVm, type VmLiftReport } from '../lift/vm.js';
import { createLogger } from '../log/logger.js';
import { parseBackupDatetime } from '../remote/datetime.js';
import { takeIndexTurn, type IndexTurn } from './daemon-turn.js';
import type { LockHolder } from '../lock/instance-lock.js';
import { withProgress } from './each-remote.js';
import { EXIT } from './exit-codes.js';
import { adminName } from './hold.js';
import { printJson, type Io } from './io.js';
import { selectRemotes } from './select.js';

// How long the command waits for the running daemon to acknowledge the hold (it looks every second, between batches).
const ACK_TIMEOUT_MS = 60_000;

export interface HoldStartOptions {
  config: string;
  remote: string;
  vm: string;
  backup?: string;
  // How long the hold lasts (a duration); `lift --vm` called it --hold.
  for?: string;
  reason?: string;
  dryRun: boolean;
  json: boolean;
  yes: boolean;
}

// `hold start`: a repair lift. The hold is written first, acknowledged by a running daemon (which from then on locks
// nothing of the VM), and only then are the units unlocked; when the hold ends the daemon locks them again.
export async function runHoldStart(
  options: HoldStartOptions,
  io: Io,
  clock: Clock,
  stdin: NodeJS.ReadStream = process.stdin,
): Promise<number> {
  const config = loadConfig(options.config);
  const [remote] = selectRemotes(config.remotes, options.remote);
  const vm = parseVm(options.vm);
  const holdMs = parseHoldDuration(options.for);
  const backupInstant = options.backup === undefined ? undefined : parseBackup(options.backup);
  // Held to the end of this command when no daemon runs; a running daemon is gone through (its acknowledgement).
  let turn: IndexTurn | undefined;
  if (!options.dryRun) {
    await confirm(options, vm, holdMs, io, stdin);
    turn = await takeIndexTurn(config.indexPath, 'hold start');
  }
  try {
    const context = await openRemoteContext(remote!, config.indexPath);
    // A running daemon keeps recording windows while this unlocks: each unit's record is looked up on disk.
    if (turn?.daemon !== undefined || options.dryRun) context.index.windows.besideWriter();
    const now = clock.now();
    const hold = options.dryRun
      ? undefined
      : newHold({ ...options, vm, since: now, ms: holdMs, by: adminName(), id: randomUUID() });
    if (hold !== undefined) await recordHold(context, hold, turn?.daemon, io);
    const label = (done: number, total: number): string => `lifting VM ${vm}: ${done}/${total}`;
    const report = await withProgress(!options.json, label, (onProgress) =>
      liftVm(context, new IoctlAdapter(), { vm, backupInstant, now, dryRun: options.dryRun, onProgress }),
    );
    if (options.json) printJson(io, toJson(report, hold));
    else for (const line of describe(report, hold)) io.out(line);
    const troubled = [report.failed, report.suspicious, report.unreadableEntries, report.stillImmutable].some(
      (list) => list.length > 0,
    );
    return troubled ? EXIT.failure : EXIT.ok;
  } finally {
    turn?.lock?.release();
  }
}

// The hold written and logged as a security event, then acknowledged by the running daemon, if one runs.
async function recordHold(context: RemoteContext, hold: Hold, daemon: LockHolder | undefined, io: Io): Promise<void> {
  await context.index.holds.write(hold);
  createLogger('info', process.stderr)
    .child({ module: 'hold', remote: hold.remote, vm: hold.vm })
    .warn(
      { until: hold.until, by: hold.by, reason: hold.reason, backup: hold.backup, security: true },
      `repair lift of VM ${hold.vm} on remote ${hold.remote} by ${hold.by}: its backups are unlocked and not ` +
        `locked again until ${hold.until}`,
    );
  await waitForDaemon(context, hold, daemon, io);
}

function parseBackup(text: string): number {
  const instant = parseBackupDatetime(`${text}.json`) ?? Date.parse(text);
  if (!Number.isNaN(instant)) return instant;
  throw new AppError('USAGE', `--backup ${JSON.stringify(text)} is not a backup datetime`, {
    value: text,
    hint: 'give the datetime as in the backup json name, e.g. 20261122T061500Z (or an ISO instant)',
  });
}

// Unlocking a VM's backups in an incident is what an attacker would want: --yes, or the VM uuid typed at a terminal.
async function confirm(
  options: HoldStartOptions,
  vm: string,
  holdMs: number,
  io: Io,
  stdin: NodeJS.ReadStream,
): Promise<void> {
  if (options.yes) return;
  if (!stdin.isTTY)
    throw new AppError('USAGE', `Refusing to unlock the backups of VM ${vm} without confirmation`, {
      value: options.vm,
      hint: 'add --yes to confirm, or run it at a terminal',
    });
  const what = options.backup === undefined ? 'every backup' : `backup ${options.backup} and the VHDs it is built on`;
  io.err(`This unlocks ${what} of VM ${vm} on remote "${options.remote}", whatever their window,`);
  io.err(`and the daemon locks none of that VM's backups (new ones included) for ${Math.round(holdMs / 60_000)} min.`);
  io.err("Meanwhile anyone holding XO's credentials can delete or change them.");
  const prompt = createInterface({ input: stdin, output: process.stderr });
  const answer = await prompt.question(`Type the VM uuid (${vm}) to go on: `);
  prompt.close();
  if (answer.trim().toLowerCase() !== vm)
    throw new AppError('USAGE', 'Not confirmed; nothing was changed', {
      value: answer,
      hint: 'type the VM uuid exactly, or pass --yes',
    });
}

// A running daemon acknowledges the hold between two lock batches: after that, nothing it locks belongs to the VM.
async function waitForDaemon(
  context: RemoteContext,
  hold: Hold,
  daemon: LockHolder | undefined,
  io: Io,
): Promise<void> {
  if (daemon === undefined) return;
  const started = Date.now();
  while (context.index.holds.seenId(hold.vm) !== hold.id) {
    if (Date.now() - started > ACK_TIMEOUT_MS)
      throw new AppError('DAEMON_RUNNING', `The running daemon (pid ${daemon.pid}) did not acknowledge the hold`, {
        value: daemon.pid,
        hint:
          'nothing was unlocked; the hold is recorded: run the same command again, or end the hold with ' +
          `hold end --remote ${hold.remote} --vm ${hold.vm} (journalctl -u xo-immutable-backups says why)`,
      });
    await sleep(100);
  }
  io.err(`the running daemon (pid ${daemon.pid}) acknowledged the hold: it locks nothing of VM ${hold.vm} until then`);
}

function describe(report: VmLiftReport, hold: Hold | undefined): string[] {
  const verb = report.dryRun ? 'would unlock' : 'unlocked';
  const lines = [`remote ${report.remote}: ${verb} ${report.unlocked.length} unit(s) of VM ${report.vm}`];
  for (const [day, count] of countByDay(report.unlocked)) lines.push(`  ${day}  ${count} unit(s)`);
  if (hold !== undefined)
    lines.push(
      `  HELD until ${hold.until}: the daemon does not lock this VM's backups (new ones included) until then,`,
      `  then locks them again; end it earlier with: hold end --remote ${report.remote} --vm ${report.vm}`,
    );
  if (report.vanished.length > 0) lines.push(`  ${report.vanished.length} unit(s) already gone from the remote`);
  for (const f of report.failed) lines.push(`  FAILED ${f.path}: ${f.message}`);
  for (const s of report.suspicious) lines.push(`  NOT UNLOCKED ${s.path}: ${s.reason}`);
  for (const u of report.unreadableEntries) lines.push(`  left alone: ${u} is not an index entry this version reads`);
  for (const p of report.stillImmutable)
    lines.push(
      `  STILL IMMUTABLE ${p}: locked again meanwhile, or unknown to the index; ` +
        'run the same command again, and if it stays, chattr -i it by hand',
    );
  return lines;
}

function toJson(report: VmLiftReport, hold: Hold | undefined): unknown {
  return {
    remote: report.remote,
    vm: report.vm,
    dryRun: report.dryRun,
    hold: hold === undefined ? null : holdJson(hold),
    unlocked: report.unlocked.length,
    units: report.unlocked,
    vanished: report.vanished,
    failed: report.failed,
    suspicious: report.suspicious,
    unreadableEntries: report.unreadableEntries,
    stillImmutable: report.stillImmutable,
  };
}
