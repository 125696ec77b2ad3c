import { createInterface } from 'node:readline/promises';
import { IoctlAdapter } from '../attributes/ioctl.js';
import type { Clock } from '../clock.js';
import { loadConfig } from '../config/load.js';
import { parseHoldDuration } from '../holds/rules.js';
import type { Config, RemoteConfig } from '../config/schema.js';
import { AppError } from '../errors.js';
import { liftRemote } from '../lift/apply.js';
import { type LiftReport } from '../lift/report.js';
import { makeRemoteMutable } from '../lift/mutable.js';
import { countByDay } from '../lift/report.js';
import { acceptClock, readClock } from '../clockguard/guard.js';
import { judgeStartClock } from '../clockguard/judge.js';
import { freeze, readClockState } from '../clockguard/state.js';
import { forEachRemote } from './each-remote.js';
import { daemonRunning, takeIndexTurn } from './daemon-turn.js';
import { EXIT } from './exit-codes.js';
import type { Io } from './io.js';
import { selectRemotes } from './select.js';

export interface LiftCommandOptions {
  config: string;
  remote?: string;
  // Deprecated (a repair lift is `hold start` / `hold end` now): --vm, --backup, --hold, --reason, --end-hold.
  vm?: string;
  backup?: string;
  hold?: string;
  reason?: string;
  endHold?: boolean;
  dryRun: boolean;
  json: boolean;
  all: boolean;
  yes: boolean;
  acceptClock: boolean;
}

interface RemoteOutcome {
  remote: string;
  report?: LiftReport;
  error?: { code: string; message: string; hint: string };
}

// `lift`: one pass, then exit. With --all, one remote is made fully mutable (decommissioning).
export async function runLift(
  options: LiftCommandOptions,
  io: Io,
  clock: Clock,
  stdin: NodeJS.ReadStream = process.stdin,
): Promise<number> {
  const deprecated = deprecatedHoldCommand(options);
  if (deprecated !== undefined) {
    io.err(`warning: lift --vm is deprecated and goes in a later release; use: xo-immutable-backups ${deprecated}`);
    // Imported only here: a plain lift does not load the hold commands (the logger, the repair lift's readers).
    if (options.endHold === true) {
      const { runHoldEnd } = await import('./hold.js');
      return runHoldEnd({ config: options.config, remote: options.remote!, vm: options.vm!, json: options.json }, io);
    }
    // A bad duration is named by the option the admin wrote, not by hold start's --for.
    if (options.hold !== undefined) parseHoldDuration(options.hold, '--hold');
    const { runHoldStart } = await import('./hold-start.js');
    return runHoldStart(
      {
        ...options,
        remote: options.remote!,
        vm: options.vm!,
        ...(options.hold === undefined ? {} : { for: options.hold }),
      },
      io,
      clock,
      stdin,
    );
  }
  const config = loadConfig(options.config);
  const remotes = selectRemotes(config.remotes, options.remote);
  if (options.all) await confirmAll(options, io, stdin);
  const command = options.all ? 'lift --all' : 'lift';
  const turn = options.dryRun ? undefined : await takeIndexTurn(config.indexPath, command);
  try {
    if (turn?.daemon !== undefined) {
      // --accept-clock beside a running daemon: the acceptance is recorded, and the daemon's next pass lifts.
      if (!options.acceptClock || options.all) throw daemonRunning(turn.daemon, command);
      io.err((await checkClock(config.indexPath, config.maxClockJumpMs, clock, options))!);
      io.err(`the running daemon (pid ${turn.daemon.pid}) lifts at its next pass`);
      return EXIT.ok;
    }
    const clockNote = await checkClock(config.indexPath, config.maxClockJumpMs, clock, options);
    if (clockNote !== undefined) io.err(clockNote);
    return await liftEach(remotes, config, options, io, clock);
  } finally {
    turn?.lock?.release();
  }
}

// The repair-lift flags of earlier releases (lift --vm ...) as the `hold` command they now are, checked as one table
// of misuses; undefined without --vm.
function deprecatedHoldCommand(options: LiftCommandOptions): string | undefined {
  const repairOnly = [
    [options.backup, '--backup'],
    [options.hold, '--hold'],
    [options.reason, '--reason'],
    [options.endHold === true ? true : undefined, '--end-hold'],
  ] as const;
  const misuse = [
    ...(options.vm === undefined
      ? repairOnly.filter(([given]) => given !== undefined).map(([, name]) => `${name} goes with --vm (a repair lift)`)
      : []),
    ...(options.vm !== undefined && options.remote === undefined ? ['--vm needs --remote ID'] : []),
    ...(options.vm !== undefined && options.all ? ['--vm cannot be combined with --all'] : []),
    ...(options.vm !== undefined && options.acceptClock ? ['--vm cannot be combined with --accept-clock'] : []),
    ...(options.endHold === true && (options.hold !== undefined || options.backup !== undefined || options.dryRun)
      ? ['--end-hold takes no --hold, --backup or --dry-run']
      : []),
  ];
  if (misuse.length > 0)
    throw new AppError('USAGE', misuse[0]!, {
      value: options.vm,
      hint: 'a repair lift is now its own command: xo-immutable-backups hold start --remote ID --vm UUID (see hold --help)',
    });
  if (options.vm === undefined) return undefined;
  const common = `--remote ${options.remote} --vm ${options.vm}`;
  if (options.endHold === true) return `hold end ${common}${options.json ? ' --json' : ''}`;
  const rest = [
    ...(options.backup === undefined ? [] : [`--backup ${options.backup}`]),
    ...(options.hold === undefined ? [] : [`--for ${options.hold}`]),
    ...(options.reason === undefined ? [] : [`--reason ${JSON.stringify(options.reason)}`]),
    ...(options.dryRun ? ['--dry-run'] : []),
    ...(options.json ? ['--json'] : []),
    ...(options.yes ? ['--yes'] : []),
  ];
  return `hold start ${[common, ...rest].join(' ')}`;
}

// One pass over each remote selected, in this command's turn (or reading only, with --dry-run).
async function liftEach(
  remotes: RemoteConfig[],
  config: Config,
  options: LiftCommandOptions,
  io: Io,
  clock: Clock,
): Promise<number> {
  const attributes = new IoctlAdapter();
  const verb = options.dryRun ? 'checking' : 'lifting';
  const progressLabel = (remote: { id: string }, done: number, total: number): string =>
    `${verb} ${remote.id}: ${done}/${total} units`;
  const outcomes: RemoteOutcome[] = (
    await forEachRemote(remotes, config, { json: options.json, progressLabel }, (context, onProgress) => {
      // A dry run reads beside a running daemon, which keeps recording windows (index/windows.ts).
      if (options.dryRun) context.index.windows.besideWriter();
      return options.all
        ? makeRemoteMutable(context, attributes, clock.now(), onProgress)
        : liftRemote(context, attributes, { now: clock.now(), dryRun: options.dryRun, all: false, onProgress });
    })
  ).map((o) =>
    o.error === undefined
      ? { remote: o.remote, report: o.result }
      : { remote: o.remote, error: { code: o.error.code, message: o.error.message, hint: o.error.hint } },
  );

  if (options.json) io.out(JSON.stringify(toJson(outcomes), null, 2));
  else for (const outcome of outcomes) for (const line of describe(outcome, options)) io.out(line);
  const troubled = outcomes.some(
    (o) =>
      o.error !== undefined ||
      (o.report !== undefined &&
        (o.report.failed.length > 0 || o.report.suspicious.length > 0 || o.report.unreadableEntries.length > 0)),
  );
  return troubled ? EXIT.failure : EXIT.ok;
}

// Making a remote mutable cannot be undone by this tool: it takes --yes, or the remote id typed at a terminal.
async function confirmAll(options: LiftCommandOptions, io: Io, stdin: NodeJS.ReadStream): Promise<void> {
  if (options.remote === undefined) {
    throw new AppError('USAGE', '--all makes one remote fully mutable and needs --remote ID', {
      value: '--all',
      hint: 'add --remote ID (the id of the remote in the config)',
    });
  }
  if (options.dryRun)
    throw new AppError('USAGE', '--all cannot be combined with --dry-run', {
      value: '--all --dry-run',
      hint: 'run `lift --dry-run --remote ID` to see what expires; --all unlocks everything',
    });
  if (options.yes) return;
  if (!stdin.isTTY) {
    throw new AppError('USAGE', `Refusing to make remote "${options.remote}" fully mutable without confirmation`, {
      value: '--all',
      hint: 'add --yes to confirm (stop the xo-immutable-backups service first, or it locks backups inside their window again)',
    });
  }
  io.err(
    `This unlocks every backup of remote "${options.remote}", whatever its window, and marks the remote as no longer immutable.`,
  );
  io.err('Stop the xo-immutable-backups service first, or it will lock the backups inside their window again.');
  const prompt = createInterface({ input: stdin, output: process.stderr });
  const answer = await prompt.question(`Type the remote id (${options.remote}) to go on: `);
  prompt.close();
  if (answer.trim() !== options.remote)
    throw new AppError('USAGE', 'Not confirmed; nothing was changed', {
      value: answer,
      hint: 'type the remote id exactly, or pass --yes',
    });
}

// Lifting trusts the wall clock: a clock set back, set ahead within the boot the daemon last recorded (or found frozen
// by the daemon) stops it until an admin accepts the clock. --accept-clock records the current time as right; --dry-run only warns.
async function checkClock(
  indexPath: string,
  maxJumpMs: number,
  clock: Clock,
  options: LiftCommandOptions,
): Promise<string | undefined> {
  if (options.acceptClock) {
    await acceptClock(indexPath, clock);
    return `clock accepted: lifting resumes from ${new Date(clock.now()).toISOString()}`;
  }
  const state = await readClockState(indexPath);
  const recorded = judgeStartClock(state, readClock(clock), maxJumpMs);
  const reason = state.frozen?.reason ?? (recorded.ok ? undefined : recorded.reason);
  if (reason === undefined) return undefined;
  if (options.dryRun)
    return `warning: lifting is frozen (${reason}); this is what would be unlocked once the clock is accepted`;
  if (state.frozen === undefined && !options.all)
    await freeze(indexPath, { since: new Date(clock.now()).toISOString(), reason });
  if (options.all) return undefined;
  throw new AppError('CLOCK_FROZEN', `Lifting is frozen: ${reason}`, {
    value: new Date(clock.now()).toISOString(),
    hint: 'check the clock (timedatectl, NTP); if it is right, run `xo-immutable-backups lift --accept-clock`',
  });
}

function describe(outcome: RemoteOutcome, options: LiftCommandOptions): string[] {
  if (outcome.error !== undefined)
    return [`error [${outcome.error.code}]: ${outcome.error.message}`, `  what to do: ${outcome.error.hint}`];
  const report = outcome.report!;
  const verb = options.dryRun ? 'would unlock' : 'unlocked';
  const lines = [
    `remote ${report.remote}: ${verb} ${report.unlocked.length} unit(s)${options.all ? ' (all)' : `; ${report.kept} still inside their window stay locked`}`,
  ];
  for (const [day, count] of countByDay(report.unlocked)) lines.push(`  ${day}  ${count} unit(s)`);
  if (report.vanished.length > 0)
    lines.push(
      `  ${report.vanished.length} unit(s) already gone from the remote: ${options.dryRun ? 'their entries would be' : 'entries'} forgotten`,
    );
  if (report.deferred.length > 0)
    lines.push(
      `  ${report.deferred.length} expired unit(s) left locked: XO is running on their VM folder, or a flat VHD of their backup stays locked; a later lift unlocks them`,
    );
  if (options.all && report.failed.length === 0)
    lines.push('  immutability.json now says immutable: false; nothing under the root is immutable any more');
  for (const f of report.failed) lines.push(`  FAILED ${f.path}: ${f.message}`);
  for (const s of report.suspicious) lines.push(`  NOT UNLOCKED ${s.path}: ${s.reason}`);
  for (const u of report.unreadableEntries) lines.push(`  left alone: ${u} is not an index entry this version reads`);
  return lines;
}

function toJson(outcomes: RemoteOutcome[]): unknown {
  return {
    remotes: outcomes.map((o) =>
      o.error !== undefined
        ? { remote: o.remote, error: o.error }
        : {
            remote: o.report!.remote,
            dryRun: o.report!.dryRun,
            unlocked: o.report!.unlocked.length,
            days: Object.fromEntries(countByDay(o.report!.unlocked)),
            kept: o.report!.kept,
            units: o.report!.unlocked,
            vanished: o.report!.vanished,
            failed: o.report!.failed,
            suspicious: o.report!.suspicious,
            unreadableEntries: o.report!.unreadableEntries,
            deferred: o.report!.deferred,
          },
    ),
  };
}
