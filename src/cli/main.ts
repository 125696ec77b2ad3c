import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.js';
import {
  addCheckCommand,
  addCompletionCommand,
  addDemoCommand,
  addInstallUnitCommand,
  addUninstallUnitCommand,
  addLiftCommand,
  addProtectCommand,
  addRebuildCommand,
  addStatusCommand,
  addVerifyCommand,
} from './commands.js';
import { EXIT_CODES_HELP, type SetExit } from './command-help.js';
import { EXIT } from './exit-codes.js';
import { addHoldCommand } from './hold.js';
import { addStageRestoreCommand } from './stage-restore.js';
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
  addProtectCommand(program, setExit);
  addDemoCommand(program, io, setExit);
  addLiftCommand(program, io, setExit);
  addHoldCommand(program, io, setExit);
  addRebuildCommand(program, io, setExit);
  addStatusCommand(program, io, setExit);
  addCheckCommand(program, io, setExit);
  addVerifyCommand(program, io, setExit);
  addStageRestoreCommand(program, io, setExit);
  addInstallUnitCommand(program, io, setExit);
  addUninstallUnitCommand(program, io, setExit);
  addCompletionCommand(program, io, setExit);
  return program;
}
