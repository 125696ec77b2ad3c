import type { Command } from 'commander';
import type { Clock } from '../clock.js';
import { systemClock } from '../clock.js';
import { loadConfig } from '../config/load.js';
import { DEFAULT_HOLD, heldUntil, holdJson, parseVm, type Hold } from '../holds/rules.js';
import { HoldStore } from '../holds/store.js';
import { configOption, exitCodes, type SetExit } from './command-help.js';
import { runningDaemon } from './daemon-turn.js';
import { EXIT } from './exit-codes.js';
import type { HoldStartOptions } from './hold-start.js';
import type { Io } from './io.js';
import { selectRemotes } from './select.js';

// `hold start|end|list`: a repair lift of one VM and the hold that keeps the daemon off it, in one command.
export function addHoldCommand(program: Command, io: Io, setExit: SetExit): void {
  const hold = program
    .command('hold')
    .description(
      "Repair lift of one VM: unlock its backups now, whatever their window, and hold the daemon off the VM's " +
        'backups (new ones included) until the hold ends; end a hold early; list the holds.',
    )
    .helpCommand(false)
    .addHelpText(
      'after',
      '\nA repair lift (a broken chain fixed by hand, a restore XO must do in place) records a hold under indexPath,' +
        "\nwaits for a running daemon to acknowledge it, then unlocks; the daemon locks none of the VM's backups, new" +
        '\nones included, until the hold ends, then locks them again. Logged as a security event; status shows it.' +
        '\nSee docs/operations.md, "Repair lift for one VM".',
    );
  addHoldStart(hold, io, setExit);
  hold
    .command('end')
    .description('End the hold on one VM now: the running daemon locks its backups again at once.')
    .addOption(configOption())
    .requiredOption('--remote <id>', 'the remote holding the VM')
    .requiredOption('--vm <uuid>', 'the VM held')
    .option('--json', 'print the result as JSON', false)
    .addHelpText(
      'after',
      exitCodes({ ok: 'the hold ended, or there was none (said)', failure: 'the hold could not be removed' }),
    )
    .action(async (options: HoldEndOptions) => setExit(await runHoldEnd(options, io)));
  hold
    .command('list')
    .description('List the VMs held by a repair lift, per remote, soonest end first.')
    .addOption(configOption())
    .option('--remote <id>', 'only this remote')
    .option('--json', 'print the holds as JSON', false)
    .addHelpText('after', exitCodes({ ok: 'listed (none held included)', failure: 'the holds could not be read' }))
    .action((options: HoldListOptions) => setExit(runHoldList(options, io, systemClock)));
}

// `hold start`: the repair lift itself (cli/hold-start.ts runs it).
function addHoldStart(hold: Command, io: Io, setExit: SetExit): void {
  hold
    .command('start')
    .description(
      'Hold one VM and unlock its backups on the remote now, whatever their window (asks for confirmation). ' +
        'The daemon locks them again when the hold ends.',
    )
    .addOption(configOption())
    .requiredOption('--remote <id>', 'the remote holding the VM')
    .requiredOption('--vm <uuid>', 'the VM (its folder in xo-vm-backups/)')
    .option('--backup <datetime>', 'only this backup (e.g. 20261122T061500Z) and the VHDs it is built on')
    .option('--for <duration>', `how long the daemon leaves the VM unlocked (default ${DEFAULT_HOLD}, at most 7d)`)
    .option('--reason <text>', 'why, recorded with the hold and logged')
    .option('--dry-run', 'print what would be unlocked; hold nothing, change nothing', false)
    .option('--json', 'print the result as JSON', false)
    .option('--yes', 'confirm without asking', false)
    .addHelpText(
      'after',
      exitCodes({
        ok: 'the VM unlocked and held (or, with --dry-run, listed)',
        failure:
          'a unit failed, was refused or is still immutable (listed), or the running daemon did not acknowledge ' +
          'the hold; or another command holds the index',
        startupCheck: 'no CAP_LINUX_IMMUTABLE, or indexPath not writable (not with --dry-run)',
      }),
    )
    .action(async (options: HoldStartOptions) => {
      // Imported when it runs: the repair lift is not loaded by the daemon or by --help.
      const { runHoldStart } = await import('./hold-start.js');
      setExit(await runHoldStart(options, io, systemClock));
    });
}

export interface HoldEndOptions {
  config: string;
  remote: string;
  vm: string;
  json: boolean;
}

// Ending a hold gives protection back: no confirmation. The running daemon sees it within a second and locks again.
export async function runHoldEnd(options: HoldEndOptions, io: Io): Promise<number> {
  const config = loadConfig(options.config);
  const [remote] = selectRemotes(config.remotes, options.remote);
  const vm = parseVm(options.vm);
  const holds = new HoldStore(config.indexPath, remote!.id);
  const hold = holds.read(vm);
  const ended = holds.remove(vm);
  const { adminName } = await import('./hold-start.js');
  const by = adminName();
  if (ended) {
    // pino is loaded only here: every command's start (lift's included) loads this module.
    const { createLogger } = await import('../log/logger.js');
    createLogger('info', process.stderr)
      .child({ module: 'hold', remote: remote!.id, vm })
      .warn({ by, security: true, until: hold?.until }, `hold on VM ${vm} ended early by ${by}`);
  }
  const daemon = await runningDaemon(config.indexPath);
  if (options.json) {
    io.out(JSON.stringify({ remote: remote!.id, vm, ended, daemonRunning: daemon !== undefined }, null, 2));
    return EXIT.ok;
  }
  const next =
    daemon === undefined
      ? 'the daemon is not running: it locks them again when it starts'
      : `the running daemon (pid ${daemon.pid}) locks them again now`;
  io.out(
    ended ? `remote ${remote!.id}: hold on VM ${vm} ended; ${next}` : `remote ${remote!.id}: VM ${vm} was not held`,
  );
  return EXIT.ok;
}

export interface HoldListOptions {
  config: string;
  remote?: string;
  json: boolean;
}

// Every hold on file. One past its end stays on file until a daemon runs: it is listed as ended.
export function runHoldList(options: HoldListOptions, io: Io, clock: Clock): number {
  const config = loadConfig(options.config);
  const now = clock.now();
  const remotes = selectRemotes(config.remotes, options.remote).map((remote) => {
    const store = new HoldStore(config.indexPath, remote.id);
    const holds = store.list().map((hold) => ({
      hold,
      ended: heldUntil(hold, now) === undefined,
      acknowledged: store.seenId(hold.vm) === hold.id,
    }));
    return { remote: remote.id, holds };
  });
  if (options.json) {
    const json = remotes.map((r) => ({
      remote: r.remote,
      holds: r.holds.map((h) => ({ ...holdJson(h.hold), ended: h.ended, acknowledged: h.acknowledged })),
    }));
    io.out(JSON.stringify({ remotes: json }, null, 2));
    return EXIT.ok;
  }
  for (const { remote, holds } of remotes) {
    if (holds.length === 0) io.out(`remote ${remote}: no VM held`);
    for (const { hold, ended, acknowledged } of holds) io.out(describeHold(remote, hold, ended, acknowledged));
  }
  return EXIT.ok;
}

function describeHold(remote: string, hold: Hold, ended: boolean, acknowledged: boolean): string {
  const state = ended
    ? 'ENDED: the daemon locks it again when it runs'
    : `HELD until ${hold.until}, NOT PROTECTED${acknowledged ? '' : ' (not yet acknowledged by a daemon)'}`;
  const detail = [`since ${hold.since} by ${hold.by}`, ...(hold.backup === undefined ? [] : [`backup ${hold.backup}`])];
  return (
    `remote ${remote}: VM ${hold.vm} ${state}\n  ${detail.join(', ')}` +
    (hold.reason === undefined ? '' : `\n  reason: ${hold.reason}`)
  );
}
