import { Argument } from 'commander';
// Each command's runner is imported when it runs: the daemon (protect) does not load the other commands, nor --help
// any of them (docs/performance.md, "Start-up, idle and memory").
import { systemClock } from '../clock.js';
import { exitCodes, flag, NO_CAPABILITY, onlyRemote, option, required, type Definition } from './command-help.js';
import { renderCompletion, SHELLS, type Shell } from './completion.js';
import { describeProgram } from './describe.js';
import { HOLD } from './hold-command.js';
import { abortOnSignals } from './interrupt.js';
import type { LiftCommandOptions } from './lift.js';
import type { RebuildCommandOptions } from './rebuild.js';
import type { RemotesOptions } from './select.js';
import type { StageRestoreCommandOptions } from './stage-restore.js';
import type { InstallUnitOptions, UninstallUnitOptions } from './unit.js';

const STARTUP_CHECK_FAILED =
  'a start-up check failed: capability, remote root, self-test, index, immutable-flag helper (perl)';

// The whole command tree below the program, in --help's order (scripts/gen-man.mjs and the completion read it).
export const COMMANDS: readonly Definition<object>[] = [
  {
    name: 'protect',
    description:
      'Run the protection daemon: lock every completed backup of every configured remote, ' +
      'then watch for new ones (what the systemd unit runs).',
    after:
      "\nAlso installed as xo-immutable-remote, the prior art's name." +
      '\nLogs: JSON lines on stdout (journalctl -u xo-immutable-backups).' +
      exitCodes({
        ok: 'stopped by SIGTERM or SIGINT',
        failure: 'failed while running',
        startupCheck: `${STARTUP_CHECK_FAILED}; or another daemon (or a lift) holds the index`,
      }),
    run: async (options: { config: string }) => (await import('./protect.js')).runProtect(options.config),
  },
  {
    name: 'demo',
    description:
      'Protect a sample XO remote in a temporary folder with the real daemon and the immutable flag, ' +
      'show a delete being refused, lift it with a clock 8 days ahead, then clean up (needs root).',
    config: false,
    options: [flag('--keep', 'keep the demo folder instead of unlocking and removing it')],
    after:
      exitCodes({
        ok: 'done: every backup was locked in time and unlocked again, and the folder removed',
        failure:
          'a backup was not locked in time, a lift failed, or the clean-up failed (the command that finishes it is printed)',
        startupCheck: 'a start-up check failed: not root (no CAP_LINUX_IMMUTABLE), or /tmp failed the +i self-test',
      }) +
      '\n  130  interrupted by SIGINT (Ctrl-C), after cleaning up\n  143  interrupted by SIGTERM, after cleaning up',
    run: async (options: { keep: boolean }, io) => {
      const { runDemo } = await import('./demo.js');
      const interrupt = abortOnSignals();
      try {
        return await runDemo(options, (line) => io.out(line), interrupt.signal);
      } finally {
        interrupt.dispose();
      }
    },
  },
  {
    name: 'lift',
    description:
      'Unlock every backup whose immutability window has passed (one pass, then exit). ' +
      'The daemon does the same every liftEvery.',
    options: [
      onlyRemote(),
      flag('--dry-run', 'print what would be unlocked, per remote and day; change nothing'),
      flag('--json', 'print the result as JSON'),
      flag('--all', 'make the --remote fully mutable, windows ignored (decommissioning); asks for confirmation'),
      flag('--yes', 'confirm --all without asking'),
      flag(
        '--accept-clock',
        'the clock has been checked and is right: unfreeze lifting (frozen after a clock jump) and lift',
      ),
      // Deprecated for one release (admins' scripts): a repair lift is `hold start` / `hold end` now. Hidden from help.
      ...['--vm <uuid>', '--backup <datetime>', '--hold <duration>', '--reason <text>'].map((f) =>
        option(f, '').hideHelp(),
      ),
      flag('--end-hold', '').hideHelp(),
    ],
    after:
      "\nAlso installed as xo-lift-remote-immutability, the prior art's name." +
      "\nNothing is unlocked before the duration has passed since the backup's own datetime, except by a repair lift" +
      '\n(see hold --help). lift --vm, --backup, --hold, --reason and --end-hold still work, deprecated: each run' +
      '\nprints the hold command to use instead.' +
      exitCodes({
        ok: 'done: everything due was unlocked (or, with --dry-run, listed)',
        failure:
          'a unit failed or was refused (listed), a remote root was missing, or lifting is frozen; ' +
          'or the daemon (or another command) holds the index',
        startupCheck: NO_CAPABILITY,
      }),
    run: async (options: LiftCommandOptions, io) => (await import('./lift.js')).runLift(options, io, systemClock),
  },
  HOLD,
  {
    name: 'rebuild-index',
    description:
      'Give every immutable backup unit without an index entry one (after a lost index, ' +
      'or to switch over from @xen-orchestra/immutable-backups, whose index is imported).',
    options: [
      onlyRemote(),
      flag('--json', 'print the result as JSON'),
      option(
        '--import <dir>',
        "also import the prior art's index from this folder (<day>/<sha256> files holding a path); repeatable",
      )
        .default([])
        .argParser((value: string, previous: string[]) => [...previous, value]),
    ],
    after:
      "\nThe day of each entry comes from the datetime in the unit's name or its alias; " +
      'units without one are listed, never guessed.' +
      exitCodes({
        ok: 'done: every immutable unit has an entry',
        failure:
          'some immutable units have no datetime (listed), a remote failed (named), ' +
          'or the daemon (or another command) holds the index',
        startupCheck: 'no CAP_LINUX_IMMUTABLE, or indexPath not writable: nothing was written',
      }),
    run: async (options: RebuildCommandOptions, io) =>
      (await import('./rebuild.js')).runRebuild(options, io, systemClock),
  },
  {
    name: 'status',
    description:
      'Show what is protected and until when: the daemon (from its heartbeat), each remote, ' +
      'the next 14 days of unlocks, the clock guard.',
    options: [onlyRemote(), flag('--json', 'print the report as JSON (docs/status.schema.json)')],
    after: exitCodes({
      ok: 'the daemon is running, every remote is available and lifting is not frozen',
      failure:
        'needs attention: the daemon is not running, a remote is unavailable, lifting is frozen, ' +
        'or a repair lift holds a VM unlocked',
    }),
    run: async (options: RemotesOptions, io) => (await import('./status.js')).runStatus(options, io, systemClock),
  },
  {
    name: 'check',
    description:
      'Preflight before enabling the service: config, capabilities, the immutable-flag helper (perl), ' +
      'each remote root and its +i self-test, ' +
      'index location, inotify watches, the systemd unit.',
    options: [
      flag('--json', 'print the checks as JSON'),
      option('--root <dir>', 'read the unit files under DIR instead of asking systemd (as systemctl --root)'),
    ],
    after:
      '\nThe unit is read as systemd runs it (systemctl cat: drop-ins included; without systemd, the unit folders),' +
      '\nand every remote root, indexPath and metricsFile is judged against its ProtectSystem=, ReadWritePaths=,' +
      '\nProtectHome=, PrivateTmp= and InaccessiblePaths=: check itself runs outside that sandbox.' +
      exitCodes({
        ok: 'every check passed',
        failure: 'a check failed, the config included (each failure names its fix)',
        usage: 'bad usage (an unknown option or argument)',
      }),
    run: async (options: { config: string; json: boolean; root?: string }, io) =>
      (await import('./check.js')).runCheck(options, io),
  },
  {
    name: 'verify',
    description:
      'Prove protection: every indexed unit exists, is immutable and unchanged since it was locked ' +
      '(inode, size, times), and no completed backup in its window is unprotected.',
    options: [onlyRemote(), flag('--json', 'print the findings as JSON')],
    after: exitCodes({
      ok: 'no findings',
      failure: 'there are findings, or a remote could not be verified (each named)',
    }),
    run: async (options: RemotesOptions, io) => (await import('./verify.js')).runVerify(options, io, systemClock),
  },
  {
    name: 'stage-restore',
    description:
      "Copy one backup of a VM, with every file its restore needs (its json, each disk's whole VHD chain), out of a " +
      'protected remote into a new folder laid out as an XO remote, mutable, so XO restores from it while the ' +
      'originals stay locked (flat-VHD remotes: XO cannot restore a locked .vhd in place).',
    options: [
      required('--remote <id>', 'the remote holding the backup'),
      required('--vm <uuid>', 'the VM (its folder in xo-vm-backups/)'),
      option(
        '--backup <datetime>',
        'this backup (20261122T061500Z or 2026-11-22T06:15:00Z); default: the newest complete',
      ),
      required('--to <dir>', 'a new or empty folder outside every protected remote, on a local filesystem'),
      flag('--dry-run', 'list what would be copied and the bytes; copy nothing'),
      flag('--json', 'print the result as JSON'),
    ],
    after:
      '\nOnly reads the remote (the daemon may keep running). Copies share blocks by reflink (FICLONE) where the ' +
      "filesystem can (xfs, btrfs, the remote's own filesystem), and are read back and compared with the originals. " +
      'Refuses a target inside a protected remote, not empty, or on a network filesystem (nfs, cifs, fuse...). ' +
      'See docs/operations.md, "Restoring after an incident".' +
      exitCodes({
        ok: 'staged, every file read back identical (or, with --dry-run, listed)',
        failure:
          'the VM or backup was not found, something on the remote was refused (named; nothing copied), or a copy failed',
        usage: 'bad usage or config, or the target was refused (nothing was changed)',
      }),
    run: async (options: StageRestoreCommandOptions, io) =>
      (await import('./stage-restore.js')).runStageRestore(options, io, systemClock),
  },
  {
    name: 'install-unit',
    description:
      'Install the systemd unit for this installation: /etc/systemd/system/xo-immutable-backups.service ' +
      '(ExecStart= this node and package) and its drop-in paths.conf (ReadWritePaths= every remote root, indexPath ' +
      'and metricsFile folder of the config), then systemctl daemon-reload; and the bash and zsh completion ' +
      '(/usr/share/bash-completion/completions/, /usr/local/share/zsh/site-functions/). Run it again after an ' +
      'upgrade or a config change.',
    options: [
      flag('--dry-run', 'print the files it would write; write nothing'),
      flag('--force', 'replace a unit file that install-unit did not write (its local changes are lost)'),
      option('--root <dir>', 'write under DIR instead of / (as systemctl --root), and skip systemctl'),
    ],
    after:
      '\nThe result is judged as systemd will run it, with your own drop-ins: nothing is written when a configured' +
      '\npath would stay unreachable (a remote under /tmp, say). Your own drop-ins are left alone, and so is a' +
      '\ncompletion file there that `completion` did not write.' +
      exitCodes({
        ok: 'installed (or, with --dry-run, printed); the next command is printed',
        failure: 'a configured path could not be used by the service (each named with its fix)',
        usage: 'bad usage or config, or an existing unit not written by install-unit (nothing was changed)',
      }),
    run: async (options: InstallUnitOptions, io, program) =>
      (await import('./unit.js')).runInstallUnit(options, io, describeProgram(program)),
  },
  {
    name: 'uninstall-unit',
    description:
      'Remove what install-unit wrote (the unit, its paths.conf, the shell completion), then systemctl ' +
      'daemon-reload. ' +
      'Refuses while the service is running or enabled: systemctl disable --now xo-immutable-backups first.',
    config: false,
    options: [
      flag('--dry-run', 'print what it would remove; remove nothing'),
      flag('--force', 'also remove a unit file that install-unit did not write'),
      option('--root <dir>', 'remove under DIR instead of / (as systemctl --root), and skip systemctl'),
    ],
    after:
      '\nBackups stay immutable until their windows pass: lift --all unlocks a remote now (docs/installation.md).' +
      exitCodes({
        ok: 'removed (or nothing to remove)',
        failure: 'the service is running or enabled (stop and disable it first)',
        usage: 'bad usage, or the unit file was not written by install-unit (nothing was changed)',
      }),
    run: async (options: UninstallUnitOptions, io, program) =>
      (await import('./unit.js')).runUninstallUnit(options, io, describeProgram(program)),
  },
  {
    name: 'completion',
    description: 'Print the shell completion script for bash or zsh, written from these commands and options.',
    config: false,
    argument: new Argument('<shell>', 'the shell').choices(SHELLS),
    after:
      '\ninstall-unit writes both where the shells load them, for every command name (docs/installation.md).\n' +
      exitCodes({ ok: 'printed', usage: 'bad usage (a shell other than bash or zsh)' }),
    run: (_options, io, program, [shell]) => {
      io.out(renderCompletion(shell as Shell, describeProgram(program)).trimEnd());
      return 0;
    },
  },
];
