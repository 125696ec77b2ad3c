import { Option, type Argument, type Command } from 'commander';
import { DEFAULT_CONFIG_PATH } from '../config/load.js';
import type { Io } from './io.js';

// Where a command's action leaves its exit code for main() to return.
export type SetExit = (code: number) => void;

// The program's --help: what each code means across commands; each command's --help lists only its own.
export const EXIT_CODES_HELP = `
Exit codes (each command's --help lists its own):
  0  done (protect: stopped by SIGTERM or SIGINT)
  1  failed while running, or needs attention
  2  bad usage or config (nothing was changed)
  3  a start-up check failed: capability, remote root, self-test, index, immutable-flag helper (perl)`;

// The exit codes one command can return, with what 0, 1 and (when it runs start-up checks) 3 mean for it.
export function exitCodes(meaning: { ok: string; failure?: string; usage?: string; startupCheck?: string }): string {
  return [
    '',
    'Exit codes:',
    `  0  ${meaning.ok}`,
    ...(meaning.failure === undefined ? [] : [`  1  ${meaning.failure}`]),
    `  2  ${meaning.usage ?? 'bad usage or config (nothing was changed)'}`,
    ...(meaning.startupCheck === undefined ? [] : [`  3  ${meaning.startupCheck}`]),
  ].join('\n');
}

export const option = (flags: string, description: string): Option => new Option(flags, description);
export const flag = (flags: string, description: string): Option => option(flags, description).default(false);
export const required = (flags: string, description: string): Option =>
  option(flags, description).makeOptionMandatory();

export const onlyRemote = (): Option => option('--remote <id>', 'only this remote');
export const NO_CAPABILITY = 'no CAP_LINUX_IMMUTABLE, or indexPath not writable (not with --dry-run)';

// One command as --help shows it: -c/--config first (unless `config` is false), its options, then `after` (notes
// and exit codes). `run` returns the exit code; a command with subcommands has none.
export interface Definition<O> {
  name: string;
  description: string;
  config?: false;
  options?: Option[];
  argument?: Argument;
  after: string;
  subcommands?: Definition<object>[];
  // A method, so a table can hold commands of different options.
  run?(options: O, io: Io, program: Command, args: string[]): Promise<number> | number;
}

export function define(parent: Command, definition: Definition<object>, io: Io, setExit: SetExit): void {
  const command = parent.command(definition.name).description(definition.description);
  if (definition.config !== false)
    command.addOption(option('-c, --config <file>', 'config file').default(DEFAULT_CONFIG_PATH));
  for (const added of definition.options ?? []) command.addOption(added);
  if (definition.argument !== undefined) command.addArgument(definition.argument);
  command.addHelpText('after', definition.after);
  if (definition.subcommands !== undefined) command.helpCommand(false);
  for (const sub of definition.subcommands ?? []) define(command, sub, io, setExit);
  const program = parent.parent ?? parent;
  if (definition.run !== undefined)
    command.action(async (...args: unknown[]) => {
      const self = args.at(-1) as Command;
      setExit(await definition.run!(self.opts(), io, program, self.args));
    });
}
