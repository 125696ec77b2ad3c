import { Command, CommanderError, Option } from 'commander';
import { DEFAULT_CONFIG_PATH } from '../config/load.js';
import { VERSION } from '../version.js';
import { runDemo } from './demo.js';
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
    .description('Makes every completed Xen Orchestra backup on a remote immutable (chattr +i) for a configured duration.')
    .version(VERSION, '-V, --version')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .addHelpText('after', EXIT_CODES_HELP)
    .showHelpAfterError('(run with --help for usage)');

  program
    .command('protect')
    .description('Run the protection daemon: lock every completed backup of every configured remote, then watch for new ones (what the systemd unit runs).')
    .addOption(configOption())
    .addHelpText('after', `\nAlso installed as xo-immutable-remote, the prior art's name.\nLogs: JSON lines on stdout (journalctl -u xo-immutable-backups).${EXIT_CODES_HELP}`)
    .action(async (options: { config: string }) => {
      exitCode = await runProtect(options.config);
    });

  program
    .command('demo')
    .description('Protect a sample XO remote in a temporary folder with the real daemon and chattr, show a delete being refused, then clean up (needs root).')
    .option('--keep', 'keep the demo folder instead of unlocking and removing it', false)
    .addHelpText('after', EXIT_CODES_HELP)
    .action(async (options: { keep: boolean }) => {
      exitCode = await runDemo(options, (line) => io.out(line));
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
