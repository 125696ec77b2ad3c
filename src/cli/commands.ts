import { Argument, Option, type Command } from 'commander';
// Each command's runner is imported when it runs: the daemon (protect) does not load the other commands, nor --help
// any of them (docs/performance.md, "Start-up, idle and memory").
import { systemClock } from '../clock.js';
import { configOption, exitCodes, STARTUP_CHECK_FAILED, type SetExit } from './command-help.js';
import { renderCompletion, SHELLS, type Shell } from './completion.js';
import { describeProgram } from './describe.js';
import { abortOnSignals } from './interrupt.js';
import type { LiftCommandOptions } from './lift.js';
import type { Io } from './io.js';
import type { RebuildCommandOptions } from './rebuild.js';
import type { InstallUnitOptions, UninstallUnitOptions } from './unit.js';

export function addProtectCommand(program: Command, setExit: SetExit): void {
  program
    .command('protect')
    .description(
      'Run the protection daemon: lock every completed backup of every configured remote, ' +
        'then watch for new ones (what the systemd unit runs).',
    )
    .addOption(configOption())
    .addHelpText(
      'after',
      "\nAlso installed as xo-immutable-remote, the prior art's name." +
        '\nLogs: JSON lines on stdout (journalctl -u xo-immutable-backups).' +
        exitCodes({
          ok: 'stopped by SIGTERM or SIGINT',
          failure: 'failed while running',
          startupCheck: `${STARTUP_CHECK_FAILED}; or another daemon (or a lift) holds the index`,
        }),
    )
    .action(async (options: { config: string }) => {
      const { runProtect } = await import('./protect.js');
      setExit(await runProtect(options.config));
    });
}

export function addDemoCommand(program: Command, io: Io, setExit: SetExit): void {
  program
    .command('demo')
    .description(
      'Protect a sample XO remote in a temporary folder with the real daemon and the immutable flag, ' +
        'show a delete being refused, lift it with a clock 8 days ahead, then clean up (needs root).',
    )
    .option('--keep', 'keep the demo folder instead of unlocking and removing it', false)
    .addHelpText(
      'after',
      exitCodes({
        ok: 'done: every backup was locked in time and unlocked again, and the folder removed',
        failure:
          'a backup was not locked in time, a lift failed, or the clean-up failed (the command that finishes it is printed)',
        startupCheck: 'a start-up check failed: not root (no CAP_LINUX_IMMUTABLE), or /tmp failed the +i self-test',
      }) +
        '\n  130  interrupted by SIGINT (Ctrl-C), after cleaning up\n  143  interrupted by SIGTERM, after cleaning up',
    )
    .action(async (options: { keep: boolean }) => {
      const { runDemo } = await import('./demo.js');
      const interrupt = abortOnSignals();
      try {
        setExit(await runDemo(options, (line) => io.out(line), interrupt.signal));
      } finally {
        interrupt.dispose();
      }
    });
}

export function addLiftCommand(program: Command, io: Io, setExit: SetExit): void {
  program
    .command('lift')
    .description(
      'Unlock every backup whose immutability window has passed (one pass, then exit). ' +
        'The daemon does the same every liftEvery.',
    )
    .addOption(configOption())
    .option('--remote <id>', 'only this remote')
    .option('--dry-run', 'print what would be unlocked, per remote and day; change nothing', false)
    .option('--json', 'print the result as JSON', false)
    .option('--all', 'make the --remote fully mutable, windows ignored (decommissioning); asks for confirmation', false)
    .option('--yes', 'confirm --all without asking', false)
    .option(
      '--accept-clock',
      'the clock has been checked and is right: unfreeze lifting (frozen after a clock jump) and lift',
      false,
    )
    // Deprecated for one release (admins' scripts): a repair lift is `hold start` / `hold end` now. Hidden from help.
    .addOption(new Option('--vm <uuid>').hideHelp())
    .addOption(new Option('--backup <datetime>').hideHelp())
    .addOption(new Option('--hold <duration>').hideHelp())
    .addOption(new Option('--reason <text>').hideHelp())
    .addOption(new Option('--end-hold').hideHelp().default(false))
    .addHelpText(
      'after',
      "\nAlso installed as xo-lift-remote-immutability, the prior art's name." +
        "\nNothing is unlocked before the duration has passed since the backup's own datetime, except by a repair lift" +
        '\n(see hold --help). lift --vm, --backup, --hold, --reason and --end-hold still work, deprecated: each run' +
        '\nprints the hold command to use instead.' +
        exitCodes({
          ok: 'done: everything due was unlocked (or, with --dry-run, listed)',
          failure:
            'a unit failed or was refused (listed), a remote root was missing, or lifting is frozen; ' +
            'or the daemon (or another command) holds the index',
          startupCheck: 'no CAP_LINUX_IMMUTABLE, or indexPath not writable (not with --dry-run)',
        }),
    )
    .action(async (options: Omit<LiftCommandOptions, 'config'> & { config: string }) => {
      const { runLift } = await import('./lift.js');
      setExit(await runLift(options, io, systemClock));
    });
}

export function addRebuildCommand(program: Command, io: Io, setExit: SetExit): void {
  program
    .command('rebuild-index')
    .description(
      'Give every immutable backup unit without an index entry one (after a lost index, ' +
        'or to switch over from @xen-orchestra/immutable-backups, whose index is imported).',
    )
    .addOption(configOption())
    .option('--remote <id>', 'only this remote')
    .option('--json', 'print the result as JSON', false)
    .option(
      '--import <dir>',
      "also import the prior art's index from this folder (<day>/<sha256> files holding a path); repeatable",
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .addHelpText(
      'after',
      "\nThe day of each entry comes from the datetime in the unit's name or its alias; " +
        'units without one are listed, never guessed.' +
        exitCodes({
          ok: 'done: every immutable unit has an entry',
          failure:
            'some immutable units have no datetime (listed), a remote failed (named), ' +
            'or the daemon (or another command) holds the index',
          startupCheck: 'no CAP_LINUX_IMMUTABLE, or indexPath not writable: nothing was written',
        }),
    )
    .action(async (options: RebuildCommandOptions) => {
      const { runRebuild } = await import('./rebuild.js');
      setExit(await runRebuild(options, io, systemClock));
    });
}

export function addStatusCommand(program: Command, io: Io, setExit: SetExit): void {
  program
    .command('status')
    .description(
      'Show what is protected and until when: the daemon (from its heartbeat), each remote, ' +
        'the next 14 days of unlocks, the clock guard.',
    )
    .addOption(configOption())
    .option('--remote <id>', 'only this remote')
    .option('--json', 'print the report as JSON (docs/status.schema.json)', false)
    .addHelpText(
      'after',
      exitCodes({
        ok: 'the daemon is running, every remote is available and lifting is not frozen',
        failure:
          'needs attention: the daemon is not running, a remote is unavailable, lifting is frozen, ' +
          'or a repair lift holds a VM unlocked',
      }),
    )
    .action(async (options: { config: string; remote?: string; json: boolean }) => {
      const { runStatus } = await import('./status.js');
      setExit(await runStatus(options, io, systemClock));
    });
}

export function addCheckCommand(program: Command, io: Io, setExit: SetExit): void {
  program
    .command('check')
    .description(
      'Preflight before enabling the service: config, capabilities, the immutable-flag helper (perl), ' +
        'each remote root and its +i self-test, ' +
        'index location, inotify watches, the systemd unit.',
    )
    .addOption(configOption())
    .option('--json', 'print the checks as JSON', false)
    .option('--root <dir>', 'read the unit files under DIR instead of asking systemd (as systemctl --root)')
    .addHelpText(
      'after',
      '\nThe unit is read as systemd runs it (systemctl cat: drop-ins included; without systemd, the unit folders),' +
        '\nand every remote root, indexPath and metricsFile is judged against its ProtectSystem=, ReadWritePaths=,' +
        '\nProtectHome=, PrivateTmp= and InaccessiblePaths=: check itself runs outside that sandbox.' +
        exitCodes({
          ok: 'every check passed',
          failure: 'a check failed, the config included (each failure names its fix)',
          usage: 'bad usage (an unknown option or argument)',
        }),
    )
    .action(async (options: { config: string; json: boolean; root?: string }) => {
      const { runCheck } = await import('./check.js');
      setExit(await runCheck(options, io));
    });
}

export function addInstallUnitCommand(program: Command, io: Io, setExit: SetExit): void {
  program
    .command('install-unit')
    .description(
      'Install the systemd unit for this installation: /etc/systemd/system/xo-immutable-backups.service ' +
        '(ExecStart= this node and package) and its drop-in paths.conf (ReadWritePaths= every remote root, indexPath ' +
        'and metricsFile folder of the config), then systemctl daemon-reload; and the bash and zsh completion ' +
        '(/usr/share/bash-completion/completions/, /usr/local/share/zsh/site-functions/). Run it again after an ' +
        'upgrade or a config change.',
    )
    .addOption(configOption())
    .option('--dry-run', 'print the files it would write; write nothing', false)
    .option('--force', 'replace a unit file that install-unit did not write (its local changes are lost)', false)
    .option('--root <dir>', 'write under DIR instead of / (as systemctl --root), and skip systemctl')
    .addHelpText(
      'after',
      '\nThe result is judged as systemd will run it, with your own drop-ins: nothing is written when a configured' +
        '\npath would stay unreachable (a remote under /tmp, say). Your own drop-ins are left alone, and so is a' +
        '\ncompletion file there that `completion` did not write.' +
        exitCodes({
          ok: 'installed (or, with --dry-run, printed); the next command is printed',
          failure: 'a configured path could not be used by the service (each named with its fix)',
          usage: 'bad usage or config, or an existing unit not written by install-unit (nothing was changed)',
        }),
    )
    .action(async (options: InstallUnitOptions) => {
      const { runInstallUnit } = await import('./unit.js');
      setExit(await runInstallUnit(options, io, describeProgram(program)));
    });
}

export function addUninstallUnitCommand(program: Command, io: Io, setExit: SetExit): void {
  program
    .command('uninstall-unit')
    .description(
      'Remove what install-unit wrote (the unit, its paths.conf, the shell completion), then systemctl ' +
        'daemon-reload. ' +
        'Refuses while the service is running or enabled: systemctl disable --now xo-immutable-backups first.',
    )
    .option('--dry-run', 'print what it would remove; remove nothing', false)
    .option('--force', 'also remove a unit file that install-unit did not write', false)
    .option('--root <dir>', 'remove under DIR instead of / (as systemctl --root), and skip systemctl')
    .addHelpText(
      'after',
      '\nBackups stay immutable until their windows pass: lift --all unlocks a remote now (docs/installation.md).' +
        exitCodes({
          ok: 'removed (or nothing to remove)',
          failure: 'the service is running or enabled (stop and disable it first)',
          usage: 'bad usage, or the unit file was not written by install-unit (nothing was changed)',
        }),
    )
    .action(async (options: UninstallUnitOptions) => {
      const { runUninstallUnit } = await import('./unit.js');
      setExit(await runUninstallUnit(options, io, describeProgram(program)));
    });
}

export function addVerifyCommand(program: Command, io: Io, setExit: SetExit): void {
  program
    .command('verify')
    .description(
      'Prove protection: every indexed unit exists, is immutable and unchanged since it was locked ' +
        '(inode, size, times), and no completed backup in its window is unprotected.',
    )
    .addOption(configOption())
    .option('--remote <id>', 'only this remote')
    .option('--json', 'print the findings as JSON', false)
    .addHelpText(
      'after',
      exitCodes({
        ok: 'no findings',
        failure: 'there are findings, or a remote could not be verified (each named)',
      }),
    )
    .action(async (options: { config: string; remote?: string; json: boolean }) => {
      const { runVerify } = await import('./verify.js');
      setExit(await runVerify(options, io, systemClock));
    });
}

export function addCompletionCommand(program: Command, io: Io, setExit: SetExit): void {
  program
    .command('completion')
    .description('Print the shell completion script for bash or zsh, written from these commands and options.')
    .addArgument(new Argument('<shell>', 'the shell').choices(SHELLS))
    .addHelpText(
      'after',
      '\ninstall-unit writes both where the shells load them, for every command name (docs/installation.md).' +
        '\n\nExit codes:\n  0  printed\n  2  bad usage (a shell other than bash or zsh)',
    )
    .action((shell: Shell) => {
      io.out(renderCompletion(shell, describeProgram(program)).trimEnd());
      setExit(0);
    });
}
