import { Command, CommanderError, Option } from 'commander';
import { DEFAULT_CONFIG_PATH } from '../config/load.js';
import { VERSION } from '../version.js';
import { systemClock } from '../clock.js';
import { runCheck } from './check.js';
import { runDemo } from './demo.js';
import { runLift, type LiftCommandOptions } from './lift.js';
import { runRebuild, type RebuildCommandOptions } from './rebuild.js';
import { runStatus } from './status.js';
import { runVerify } from './verify.js';
import { EXIT } from './exit-codes.js';
import { runProtect } from './protect.js';
import { renderError } from './render.js';

export interface Io {
  out(line: string): void;
  err(line: string): void;
}

const processIo: Io = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

const EXIT_CODES_HELP = `
Exit codes:
  0  done (protect: stopped by SIGTERM or SIGINT)
  1  failed while running
  2  bad usage or config (nothing was changed)
  3  a start-up check failed: capability, remote root, self-test, index, chattr`;

function configOption(): Option {
  return new Option('-c, --config <file>', 'config file').default(DEFAULT_CONFIG_PATH);
}

// argv (without node and the script) -> exit code. Commands print for humans; errors carry a code and what to do.
export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  let exitCode: number = EXIT.ok;
  const program = new Command('xo-immutable-backups')
    .description(
      'Makes every completed Xen Orchestra backup on a remote immutable (chattr +i) for a configured duration.',
    )
    .version(VERSION, '-V, --version')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .addHelpText('after', EXIT_CODES_HELP)
    .showHelpAfterError('(run with --help for usage)');

  program
    .command('protect')
    .description(
      'Run the protection daemon: lock every completed backup of every configured remote, then watch for new ones (what the systemd unit runs).',
    )
    .addOption(configOption())
    .addHelpText(
      'after',
      `\nAlso installed as xo-immutable-remote, the prior art's name.\nLogs: JSON lines on stdout (journalctl -u xo-immutable-backups).${EXIT_CODES_HELP}`,
    )
    .action(async (options: { config: string }) => {
      exitCode = await runProtect(options.config);
    });

  program
    .command('demo')
    .description(
      'Protect a sample XO remote in a temporary folder with the real daemon and chattr, show a delete being refused, lift it with a clock 8 days ahead, then clean up (needs root).',
    )
    .option('--keep', 'keep the demo folder instead of unlocking and removing it', false)
    .addHelpText('after', EXIT_CODES_HELP)
    .action(async (options: { keep: boolean }) => {
      exitCode = await runDemo(options, (line) => io.out(line));
    });

  program
    .command('lift')
    .description(
      'Unlock every backup whose immutability window has passed (one pass, then exit). The daemon does the same every liftEvery.',
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
    .addHelpText(
      'after',
      `\nAlso installed as xo-lift-remote-immutability, the prior art's name.\nNothing is unlocked before the duration has passed since the backup's own datetime.${EXIT_CODES_HELP.replace('1  failed while running', '1  something failed or was refused (listed)')}`,
    )
    .action(async (options: Omit<LiftCommandOptions, 'config'> & { config: string }) => {
      exitCode = await runLift(options, io, systemClock);
    });

  program
    .command('rebuild-index')
    .description(
      'Give every immutable backup unit without an index entry one (after a lost index, or to switch over from @xen-orchestra/immutable-backups, whose index is imported).',
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
      `\nThe day of each entry comes from the datetime in the unit's name or its alias; units without one are listed, never guessed.${EXIT_CODES_HELP.replace('1  failed while running', '1  some immutable units have no datetime (listed)')}`,
    )
    .action(async (options: RebuildCommandOptions) => {
      exitCode = await runRebuild(options, io, systemClock);
    });

  program
    .command('status')
    .description(
      'Show what is protected and until when: the daemon (from its heartbeat), each remote, the next 14 days of unlocks, the clock guard.',
    )
    .addOption(configOption())
    .option('--remote <id>', 'only this remote')
    .option('--json', 'print the report as JSON (docs/status.schema.json)', false)
    .addHelpText(
      'after',
      `${EXIT_CODES_HELP.replace('1  failed while running', '1  needs attention: the daemon is not running, a remote is unavailable, or lifting is frozen')}`,
    )
    .action(async (options: { config: string; remote?: string; json: boolean }) => {
      exitCode = await runStatus(options, io, systemClock);
    });

  program
    .command('check')
    .description(
      'Preflight before enabling the service: config, capabilities, chattr, each remote root and its +i self-test, index location, inotify watches, the systemd unit.',
    )
    .addOption(configOption())
    .option('--json', 'print the checks as JSON', false)
    .addHelpText(
      'after',
      `${EXIT_CODES_HELP.replace('1  failed while running', '1  a check failed (each failure names its fix)')}`,
    )
    .action(async (options: { config: string; json: boolean }) => {
      exitCode = await runCheck(options, io);
    });

  program
    .command('verify')
    .description(
      'Prove protection: every indexed unit exists, is immutable and unchanged since it was locked (inode, size, times), and no completed backup in its window is unprotected.',
    )
    .addOption(configOption())
    .option('--remote <id>', 'only this remote')
    .option('--json', 'print the findings as JSON', false)
    .addHelpText('after', `${EXIT_CODES_HELP.replace('1  failed while running', '1  there are findings (each named)')}`)
    .action(async (options: { config: string; remote?: string; json: boolean }) => {
      exitCode = await runVerify(options, io, systemClock);
    });

  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const rendered = renderError(error, false);
    io.err(rendered.text);
    return rendered.exitCode;
  }
}
