import type { Command, Option } from 'commander';

// The prior art's command names (package.json "bin", bin/*.js): each runs one command of the program.
export const ALIASES: Readonly<Record<string, string>> = {
  'xo-immutable-remote': 'protect',
  'xo-lift-remote-immutability': 'lift',
};

// What --help says about the program, as plain data: the man page and the shell completion are written from it, so
// neither can say something --help does not.
export interface ProgramSpec {
  name: string;
  description: string;
  // -V/--version and -h/--help.
  options: OptionSpec[];
  commands: CommandSpec[];
  // The text --help prints after the lists (exit codes).
  after: string;
}

export interface CommandSpec {
  name: string;
  // As --help's usage line: `lift [options]`.
  usage: string;
  description: string;
  arguments: ArgumentSpec[];
  options: OptionSpec[];
  after: string;
  // The implicit `help [command]`: completed, not documented as a command.
  isHelp: boolean;
  // A command's own commands (`hold start`), each named by its own word; empty for most.
  subcommands: CommandSpec[];
}

export interface ArgumentSpec {
  name: string;
  description: string;
  // The only values accepted, when --help lists them.
  choices: string[] | undefined;
}

export interface OptionSpec {
  short: string | undefined;
  long: string;
  // The name of its value (`file`, `dir`, `id`), undefined for a flag.
  argument: string | undefined;
  description: string;
  // A value-taking option's default, as --help shows it.
  defaultValue: string | undefined;
  mandatory: boolean;
  // Given more than once, each value kept (its default is a list).
  repeatable: boolean;
}

// Reads the commander tree as --help does (its Help class lists the visible options and commands, help included).
export function describeProgram(program: Command): ProgramSpec {
  const help = program.createHelp();
  return {
    name: program.name(),
    description: program.description(),
    options: help.visibleOptions(program).map(describeOption),
    commands: help.visibleCommands(program).map((command) => describeCommand(program, command)),
    after: textAfterHelp(program),
  };
}

function describeCommand(parent: Command, command: Command): CommandSpec {
  const commandHelp = command.createHelp();
  const visible = command.commands.length === 0 ? [] : commandHelp.visibleCommands(command);
  return {
    name: command.name(),
    usage: `${command.name()} ${command.usage()}`.trim(),
    description: command.description(),
    arguments: command.registeredArguments.map((argument) => ({
      name: argument.name(),
      description: argument.description,
      choices: argument.argChoices,
    })),
    options: commandHelp.visibleOptions(command).map(describeOption),
    after: textAfterHelp(command),
    isHelp: !parent.commands.includes(command),
    subcommands: visible.map((sub) => describeCommand(command, sub)),
  };
}

function describeOption(option: Option): OptionSpec {
  const argument = /[<[]([^>\]]+)[>\]]/.exec(option.flags)?.[1];
  const takesValue = option.required || option.optional;
  return {
    short: option.short,
    long: option.long ?? option.flags,
    argument,
    description: option.description,
    defaultValue:
      takesValue && option.defaultValue !== undefined && !Array.isArray(option.defaultValue)
        ? (option.defaultValueDescription ?? JSON.stringify(option.defaultValue))
        : undefined,
    mandatory: option.mandatory,
    repeatable: Array.isArray(option.defaultValue),
  };
}

// What addHelpText('after') adds: the command's help as printed, less the part helpInformation() writes.
function textAfterHelp(command: Command): string {
  let printed = '';
  const output = command.configureOutput();
  command.configureOutput({ ...output, writeOut: (text) => (printed += text), getOutHasColors: () => false });
  try {
    command.outputHelp();
  } finally {
    command.configureOutput(output);
  }
  const core = command.helpInformation();
  if (!printed.startsWith(core)) throw new Error(`the help of ${command.name()} does not start with its usage`);
  return printed.slice(core.length).replace(/^\n+|\s+$/g, '');
}
