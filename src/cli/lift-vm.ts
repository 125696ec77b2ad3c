import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { createInterface } from 'node:readline/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { IoctlAdapter } from '../attributes/ioctl.js';
import type { Clock } from '../clock.js';
import { parseDuration } from '../config/duration.js';
import { loadConfig } from '../config/load.js';
import { openRemoteContext } from '../context/open.js';
import type { RemoteContext } from '../context/remote-context.js';
import { AppError } from '../errors.js';
import { VM_UUID, type Hold } from '../index/holds.js';
import { countByDay } from '../lift/report.js';
import { liftVm, type VmLiftReport } from '../lift/vm.js';
import { createLogger, type Logger } from '../log/logger.js';
import { parseBackupDatetime } from '../remote/datetime.js';
import { runningDaemon, takeIndexTurn, type IndexTurn } from './daemon-turn.js';
import type { LockHolder } from '../lock/instance-lock.js';
import { EXIT } from './exit-codes.js';
import type { Io } from './main.js';
import { selectRemotes } from './select.js';

// A repair lift ends on its own: a day unless said otherwise, a week at most, so protection is never forgotten off.
export const DEFAULT_HOLD = '1d';
export const MAX_HOLD_MS = 7 * 86_400_000;
// How long the command waits for the running daemon to acknowledge the hold (it looks every second, between batches).
const ACK_TIMEOUT_MS = 60_000;

export interface VmLiftCommandOptions {
  config: string;
  remote?: string;
  vm: string;
  backup?: string;
  hold?: string;
  reason?: string;
  endHold: boolean;
  dryRun: boolean;
  json: boolean;
  yes: boolean;
  all: boolean;
  acceptClock: boolean;
}

// `lift --vm`: a repair lift. The hold is written first, acknowledged by a running daemon (which from then on locks
// nothing of the VM), and only then are the units unlocked; when the hold ends the daemon locks them again.
export async function runVmLift(
  options: VmLiftCommandOptions,
  io: Io,
  clock: Clock,
  stdin: NodeJS.ReadStream = process.stdin,
): Promise<number> {
  const config = loadConfig(options.config);
  const remoteId = requireRemote(options);
  const [remote] = selectRemotes(config.remotes, remoteId);
  const vm = parseVm(options.vm);
  const audit = createLogger('info', process.stderr).child({ module: 'lift', remote: remoteId, vm });
  const by = process.env.SUDO_USER ?? os.userInfo().username;
  if (options.endHold) {
    const context = await openRemoteContext(remote!, config.indexPath);
    return endHold({ context, vm, by, json: options.json, indexPath: config.indexPath }, io, clock, audit);
  }
  const holdMs = parseHold(options.hold);
  const backupInstant = options.backup === undefined ? undefined : parseBackup(options.backup);
  // Held to the end of this command when no daemon runs; a running daemon is gone through (its acknowledgement).
  let turn: IndexTurn | undefined;
  if (!options.dryRun) {
    await confirm(options, vm, remoteId, holdMs, io, stdin);
    turn = await takeIndexTurn(config.indexPath, 'lift --vm');
  }
  const context = await openRemoteContext(remote!, config.indexPath);
  const now = clock.now();
  let hold: Hold | undefined;
  if (!options.dryRun) {
    hold = {
      version: 1,
      remote: remoteId,
      vm,
      since: new Date(now).toISOString(),
      until: new Date(now + holdMs).toISOString(),
      by,
      ...(options.reason === undefined ? {} : { reason: options.reason }),
      ...(options.backup === undefined ? {} : { backup: options.backup }),
      id: randomUUID(),
    };
    await context.index.holds.write(hold);
    audit.warn(
      { until: hold.until, by, reason: options.reason, backup: options.backup, security: true },
      `repair lift of VM ${vm} on remote ${remoteId} by ${by}: its backups are unlocked and not locked again ` +
        `until ${hold.until}`,
    );
    await waitForDaemon(context, hold, turn?.daemon, io);
  }
  const report = await liftVm(context, new IoctlAdapter(), {
    vm,
    ...(backupInstant === undefined ? {} : { backupInstant }),
    now,
    dryRun: options.dryRun,
    ...(!options.json && process.stderr.isTTY
      ? { onProgress: (done: number, total: number) => process.stderr.write(`\rlifting VM ${vm}: ${done}/${total}`) }
      : {}),
  });
  if (!options.json && process.stderr.isTTY) process.stderr.write('\r\x1b[K');
  if (options.json) io.out(JSON.stringify(toJson(report, hold), null, 2));
  else for (const line of describe(report, hold)) io.out(line);
  const troubled =
    report.failed.length > 0 ||
    report.suspicious.length > 0 ||
    report.unreadableEntries.length > 0 ||
    report.stillImmutable.length > 0;
  turn?.lock?.release();
  return troubled ? EXIT.failure : EXIT.ok;
}

function requireRemote(options: VmLiftCommandOptions): string {
  const misuse =
    options.remote === undefined
      ? '--vm needs --remote ID'
      : options.all
        ? '--vm cannot be combined with --all'
        : options.acceptClock
          ? '--vm cannot be combined with --accept-clock'
          : options.endHold && (options.hold !== undefined || options.backup !== undefined || options.dryRun)
            ? '--end-hold takes no --hold, --backup or --dry-run'
            : undefined;
  if (misuse !== undefined)
    throw new AppError('USAGE', misuse, {
      value: options.vm,
      hint: 'xo-immutable-backups lift --remote ID --vm UUID [--backup DATETIME] [--hold DURATION] (see lift --help)',
    });
  return options.remote!;
}

function parseVm(vm: string): string {
  if (VM_UUID.test(vm)) return vm.toLowerCase();
  throw new AppError('USAGE', `--vm ${JSON.stringify(vm)} is not a VM uuid`, {
    value: vm,
    hint: 'give the uuid of the VM, as in the folder name xo-vm-backups/<uuid> on the remote',
  });
}

// Pure: the hold asked for, within its bounds.
export function parseHold(text: string | undefined): number {
  const ms = parseDuration(text ?? DEFAULT_HOLD);
  if (ms !== undefined && ms <= MAX_HOLD_MS) return ms;
  throw new AppError('USAGE', `--hold ${JSON.stringify(text)} is not a duration of at most 7 days`, {
    value: text,
    hint: 'write it as 30m, 12h or 2d (the default is 1d, the most 7d); end a hold early with --end-hold',
  });
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
  options: VmLiftCommandOptions,
  vm: string,
  remote: string,
  holdMs: number,
  io: Io,
  stdin: NodeJS.ReadStream,
): Promise<void> {
  if (options.yes) return;
  if (!stdin.isTTY)
    throw new AppError('USAGE', `Refusing to unlock the backups of VM ${vm} without confirmation`, {
      value: '--vm',
      hint: 'add --yes to confirm, or run it at a terminal',
    });
  const what = options.backup === undefined ? 'every backup' : `backup ${options.backup} and the VHDs it is built on`;
  io.err(`This unlocks ${what} of VM ${vm} on remote "${remote}", whatever their window,`);
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
          `lift --remote ${hold.remote} --vm ${hold.vm} --end-hold (journalctl -u xo-immutable-backups says why)`,
      });
    await sleep(100);
  }
  io.err(`the running daemon (pid ${daemon.pid}) acknowledged the hold: it locks nothing of VM ${hold.vm} until then`);
}

// Ending a hold gives protection back: no confirmation. The running daemon sees it within a second and locks again.
async function endHold(
  {
    context,
    vm,
    by,
    json,
    indexPath,
  }: { context: RemoteContext; vm: string; by: string; json: boolean; indexPath: string },
  io: Io,
  clock: Clock,
  audit: Logger,
): Promise<number> {
  const hold = context.index.holds.read(vm);
  const removed = context.index.holds.remove(vm);
  const daemon = await runningDaemon(indexPath);
  const next =
    daemon === undefined
      ? 'the daemon is not running: it locks them again when it starts'
      : `the running daemon (pid ${daemon.pid}) locks them again now`;
  if (removed) audit.warn({ by, security: true, until: hold?.until }, `hold on VM ${vm} ended early by ${by}`);
  if (json)
    io.out(JSON.stringify({ remote: context.id, vm, ended: removed, daemonRunning: daemon !== undefined }, null, 2));
  else
    io.out(
      removed ? `remote ${context.id}: hold on VM ${vm} ended; ${next}` : `remote ${context.id}: VM ${vm} was not held`,
    );
  return EXIT.ok;
}

function describe(report: VmLiftReport, hold: Hold | undefined): string[] {
  const verb = report.dryRun ? 'would unlock' : 'unlocked';
  const lines = [`remote ${report.remote}: ${verb} ${report.unlocked.length} unit(s) of VM ${report.vm}`];
  for (const [day, count] of countByDay(report.unlocked)) lines.push(`  ${day}  ${count} unit(s)`);
  if (hold !== undefined)
    lines.push(
      `  HELD until ${hold.until}: the daemon does not lock this VM's backups (new ones included) until then,`,
      `  then locks them again; end it earlier with: lift --remote ${report.remote} --vm ${report.vm} --end-hold`,
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
    hold:
      hold === undefined ? null : { since: hold.since, until: hold.until, by: hold.by, backup: hold.backup ?? null },
    unlocked: report.unlocked.length,
    units: report.unlocked,
    vanished: report.vanished,
    failed: report.failed,
    suspicious: report.suspicious,
    unreadableEntries: report.unreadableEntries,
    stillImmutable: report.stillImmutable,
  };
}
