import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.js';
import { define, EXIT_CODES_HELP, type SetExit } from './command-help.js';
import { COMMANDS } from './commands.js';
import { EXIT } from './exit-codes.js';
import type { Io } from './io.js';
import { renderError } from './render.js';

const processIo: Io = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

// argv (without node and the script) -> exit code. Commands print for humans; errors carry a code and what to do.
export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  let exitCode: number = EXIT.ok;
  const program = createProgram(io, (code) => {
    exitCode = code;
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

// The whole command tree (exported for the man page generator, scripts/gen-man.mjs).
export function createProgram(io: Io, setExit: SetExit): Command {
  const program = new Command('xo-immutable-backups')
    .description(
      'Makes every completed Xen Orchestra backup on a remote immutable (the Linux immutable flag) for a configured duration.',
    )
    .version(VERSION, '-V, --version')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .addHelpText('after', EXIT_CODES_HELP)
    .showHelpAfterError('(run with --help for usage)');
  for (const definition of COMMANDS) define(program, definition, io, setExit);
  return program;
}
