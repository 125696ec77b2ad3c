import { systemClock } from '../clock.js';
import { DEFAULT_HOLD } from '../holds/rules.js';
import { exitCodes, flag, NO_CAPABILITY, onlyRemote, option, required, type Definition } from './command-help.js';
import type { HoldEndOptions } from './hold.js';
import type { RemotesOptions } from './select.js';
import type { HoldStartOptions } from './hold-start.js';

// `hold start|end|list`: a repair lift of one VM and the hold that keeps the daemon off it, in one command. Each
// runner is imported when it runs (cli/commands.ts).
export const HOLD: Definition<object> = {
  name: 'hold',
  description:
    "Repair lift of one VM: unlock its backups now, whatever their window, and hold the daemon off the VM's " +
    'backups (new ones included) until the hold ends; end a hold early; list the holds.',
  config: false,
  after:
    '\nA repair lift (a broken chain fixed by hand, a restore XO must do in place) records a hold under indexPath,' +
    "\nwaits for a running daemon to acknowledge it, then unlocks; the daemon locks none of the VM's backups, new" +
    '\nones included, until the hold ends, then locks them again. Logged as a security event; status shows it.' +
    '\nSee docs/operations.md, "Repair lift for one VM".',
  subcommands: [
    {
      name: 'start',
      description:
        'Hold one VM and unlock its backups on the remote now, whatever their window (asks for confirmation). ' +
        'The daemon locks them again when the hold ends.',
      options: [
        required('--remote <id>', 'the remote holding the VM'),
        required('--vm <uuid>', 'the VM (its folder in xo-vm-backups/)'),
        option('--backup <datetime>', 'only this backup (e.g. 20261122T061500Z) and the VHDs it is built on'),
        option('--for <duration>', `how long the daemon leaves the VM unlocked (default ${DEFAULT_HOLD}, at most 7d)`),
        option('--reason <text>', 'why, recorded with the hold and logged'),
        flag('--dry-run', 'print what would be unlocked; hold nothing, change nothing'),
        flag('--json', 'print the result as JSON'),
        flag('--yes', 'confirm without asking'),
      ],
      after: exitCodes({
        ok: 'the VM unlocked and held (or, with --dry-run, listed)',
        failure:
          'a unit failed, was refused or is still immutable (listed), or the running daemon did not acknowledge ' +
          'the hold; or another command holds the index',
        startupCheck: NO_CAPABILITY,
      }),
      run: async (options: HoldStartOptions, io) =>
        (await import('./hold-start.js')).runHoldStart(options, io, systemClock),
    },
    {
      name: 'end',
      description: 'End the hold on one VM now: the running daemon locks its backups again at once.',
      options: [
        required('--remote <id>', 'the remote holding the VM'),
        required('--vm <uuid>', 'the VM held'),
        flag('--json', 'print the result as JSON'),
      ],
      after: exitCodes({ ok: 'the hold ended, or there was none (said)', failure: 'the hold could not be removed' }),
      run: async (options: HoldEndOptions, io) => (await import('./hold.js')).runHoldEnd(options, io),
    },
    {
      name: 'list',
      description: 'List the VMs held by a repair lift, per remote, soonest end first.',
      options: [onlyRemote(), flag('--json', 'print the holds as JSON')],
      after: exitCodes({ ok: 'listed (none held included)', failure: 'the holds could not be read' }),
      run: async (options: RemotesOptions, io) => (await import('./hold.js')).runHoldList(options, io, systemClock),
    },
  ],
};
