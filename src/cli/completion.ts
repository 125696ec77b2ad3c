import { ALIASES, type CommandSpec, type OptionSpec, type ProgramSpec } from './describe.js';

// The shells `completion` writes for (its argument's choices).
export const SHELLS = ['bash', 'zsh'] as const;
export type Shell = (typeof SHELLS)[number];

// Pure: the completion script for a shell, from the same definitions as --help.
export function renderCompletion(shell: Shell, spec: ProgramSpec): string {
  return shell === 'bash' ? renderBash(spec) : renderZsh(spec);
}

// Where install-unit writes the scripts. bash-completion loads a command's file at its first Tab from the
// completions folder beside its own script (found whatever XDG_DATA_DIRS says), so each command name needs one.
// zsh: the site folder, first in $fpath of Debian's zsh and of zsh built from source.
export const BASH_COMPLETIONS = '/usr/share/bash-completion/completions';
export const ZSH_COMPLETIONS = '/usr/local/share/zsh/site-functions';

export interface CompletionFile {
  path: string;
  text: string;
}

// Pure: the files install-unit writes, one per command name for bash, one for zsh.
export function completionFiles(spec: ProgramSpec): CompletionFile[] {
  const bash = renderBash(spec);
  return [
    ...[spec.name, ...Object.keys(ALIASES)].map((name) => ({ path: `${BASH_COMPLETIONS}/${name}`, text: bash })),
    { path: `${ZSH_COMPLETIONS}/_${spec.name}`, text: renderZsh(spec) },
  ];
}

// Pure: whether a file's text is a script `completion` wrote (for this program), so install-unit and uninstall-unit
// replace or remove only those, never a completion an admin or a package wrote.
export function isOurCompletion(text: string, program: string): boolean {
  // bash's first line, or zsh's second (after #compdef).
  return text
    .split('\n', 2)
    .some((line) =>
      ['bash', 'zsh'].some((shell) => line.startsWith(`# ${shell} completion for ${program}, written by `)),
    );
}

// What an option's value completes to, from the name --help gives it.
function valueKind(option: OptionSpec): 'file' | 'dir' | 'other' {
  if (option.argument === 'file') return 'file';
  return option.argument === 'dir' ? 'dir' : 'other';
}

function names(option: OptionSpec): string[] {
  return option.short === undefined ? [option.long] : [option.short, option.long];
}

function bashFunction(name: string): string {
  return `_${name.replace(/[^A-Za-z0-9_]/g, '_')}`;
}

// A case label in bash: a subcommand is two words (`'hold start')`).
function bashLabel(words: readonly string[]): string {
  return words.length === 1 ? words[0]! : `'${words.join(' ')}'`;
}

// The `case $prev` that completes an option's value: a file, a folder, or nothing.
function bashValueCase(command: CommandSpec): string[] {
  const valued = command.options.filter((o) => o.argument !== undefined);
  if (valued.length === 0) return [];
  const lines = ['      case $prev in'];
  for (const kind of ['file', 'dir', 'other'] as const) {
    const options = valued.filter((o) => valueKind(o) === kind);
    if (options.length === 0) continue;
    const complete =
      kind === 'other'
        ? 'return'
        : `compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen ${kind === 'file' ? '-f' : '-d'} -- "$cur"); return`;
    lines.push(`        ${options.flatMap(names).join('|')}) ${complete} ;;`);
  }
  return [...lines, '      esac'];
}

// Options after a dash, else the words given (a command's subcommands, an argument's choices).
function bashOptionsOrWords(options: readonly OptionSpec[], words: readonly string[]): string[] {
  const indent = '      ';
  const complete = (list: string): string => `mapfile -t COMPREPLY < <(compgen -W '${list}' -- "$cur")`;
  const optionWords = options.flatMap(names).join(' ');
  if (words.length === 0) return [`${indent}${complete(optionWords)}`];
  return [
    `${indent}if [[ $cur == -* ]]; then`,
    `${indent}  ${complete(optionWords)}`,
    `${indent}else`,
    `${indent}  ${complete(words.join(' '))}`,
    `${indent}fi`,
  ];
}

// The case of one command (and of each of its subcommands), as words typed after the program's name.
function bashCommandCases(command: CommandSpec, parents: readonly string[], siblings: string): string[] {
  const words = [...parents, command.name];
  const label = `    ${bashLabel(words)})`;
  if (command.isHelp)
    return [
      label,
      `      [[ $prev == ${command.name} ]] && mapfile -t COMPREPLY < <(compgen -W '${siblings}' -- "$cur")`,
      '      ;;',
    ];
  const subcommands = command.subcommands.map((c) => c.name);
  const choices = command.arguments.flatMap((a) => a.choices ?? []);
  return [
    label,
    ...bashValueCase(command),
    ...bashOptionsOrWords(command.options, subcommands.length > 0 ? subcommands : choices),
    '      ;;',
    ...command.subcommands.flatMap((sub) => bashCommandCases(sub, words, subcommands.join(' '))),
  ];
}

function renderBash(spec: ProgramSpec): string {
  const fn = bashFunction(spec.name);
  const commandNames = spec.commands.map((c) => c.name);
  const parents = spec.commands.filter((c) => c.subcommands.length > 0).map((c) => c.name);
  return [
    `# bash completion for ${spec.name}, written by \`${spec.name} completion bash\` from its --help.`,
    `# Installed by \`${spec.name} install-unit\` as ${BASH_COMPLETIONS}/${spec.name}, and under each other name.`,
    `${fn}() {`,
    '  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} command= i',
    '  COMPREPLY=()',
    '  case ${COMP_WORDS[0]##*/} in',
    ...Object.entries(ALIASES).map(([alias, command]) => `    ${alias}) command=${command} ;;`),
    '    *)',
    '      # The command is the first word that is not an option (with its subcommand, the next such word): options',
    '      # before it take no value.',
    '      for ((i = 1; i < COMP_CWORD; i++)); do',
    '        case ${COMP_WORDS[i]} in',
    '          -*) ;;',
    parents.length === 0
      ? '          *) command=${COMP_WORDS[i]}; break ;;'
      : `          *) command=\${command:+$command }\${COMP_WORDS[i]}; case $command in ${parents.join('|')}) ;; *) break ;; esac ;;`,
    '        esac',
    '      done',
    '      ;;',
    '  esac',
    '  case $command in',
    "    '')",
    ...bashOptionsOrWords(spec.options, commandNames),
    '      ;;',
    ...spec.commands.flatMap((command) => bashCommandCases(command, [], commandNames.join(' '))),
    '  esac',
    '}',
    `complete -F ${fn} ${[spec.name, ...Object.keys(ALIASES)].join(' ')}`,
    '',
  ].join('\n');
}

// The first clause of a description (up to "; ", or also ": " and ". " for a command): what zsh lists by each name.
function summary(text: string, ends: RegExp): string {
  const clause = text.split(ends)[0]!.trim();
  return clause.length <= 72 ? clause : `${clause.slice(0, clause.lastIndexOf(' ', 70))}...`;
}

const COMMAND_CLAUSE = /[.:;]\s|\s\(/;
const OPTION_CLAUSE = /;\s/;

// Inside a single-quoted zsh word: a quote closes it, so it is written '\''.
function zshQuoted(text: string): string {
  return text.replace(/'/g, "'\\''");
}

function zshOptionSpec(option: OptionSpec): string {
  // In an _arguments [explanation], brackets and backslashes are escaped.
  const explanation = `[${zshQuoted(summary(option.description, OPTION_CLAUSE).replace(/([[\]\\])/g, '\\$1'))}]`;
  const kind = valueKind(option);
  const action = kind === 'file' ? '_files' : kind === 'dir' ? '_files -/' : ' ';
  const value = option.argument === undefined ? '' : `:${option.argument.replace(/[:'\\]/g, '')}:${action}`;
  const repeat = option.repeatable ? '*' : '';
  if (option.short === undefined)
    return `'${repeat}${option.long}${option.argument === undefined ? '' : '='}${explanation}${value}'`;
  // Both spellings, each excluding the other once given: '(-c --config)'{-c+,--config=}'[...]:file:_files'.
  const exclusive = option.repeatable ? '' : `(${option.short} ${option.long})`;
  const forms =
    option.argument === undefined ? `{${option.short},${option.long}}` : `{${option.short}+,${option.long}=}`;
  return `'${exclusive}${repeat}'${forms}'${explanation}${value}'`;
}

function zshArguments(specs: readonly string[], dispatch: boolean): string[] {
  const all = [...specs, ...(dispatch ? ["'1:command:->command'", "'*::argument:->argument'"] : [])];
  return [
    `  _arguments ${dispatch ? '-C ' : ''}-s -S \\`,
    ...all.map((s, i) => `    ${s}${i === all.length - 1 ? '' : ' \\'}`),
  ];
}

// `<fn>_commands`, listing commands with what each does; and the body that completes options, then a command, then
// hands the rest of the line to that command's function.
function zshDispatcher(fn: string, options: readonly OptionSpec[], commands: readonly CommandSpec[]): string[] {
  const described = commands.map((c) => `    '${c.name}:${zshQuoted(summary(c.description, COMMAND_CLAUSE))}'`);
  return [
    ...zshArguments(options.map(zshOptionSpec), true),
    '  case $state in',
    `    command) ${fn}_commands ;;`,
    '    argument)',
    '      curcontext=${curcontext%:*:*}:$words[1]:',
    '      case $words[1] in',
    ...commands.map((command) => `        ${command.name}) ${fn}_${zshName(command)} ;;`),
    '      esac',
    '      ;;',
    '  esac',
    '}',
    '',
    `${fn}_commands() {`,
    '  local -a commands=(',
    ...described,
    '  )',
    "  _describe -t commands 'command' commands",
    '}',
    '',
  ];
}

function zshName(command: CommandSpec): string {
  return command.name.replace(/-/g, '_');
}

// The function completing one command (`<parent fn>_<name>`), and those of its subcommands.
function zshCommandFunctions(parentFn: string, command: CommandSpec): string[] {
  const fn = `${parentFn}_${zshName(command)}`;
  if (command.isHelp) return [`${fn}() {`, `  _arguments '1:command:${parentFn}_commands'`, '}', ''];
  if (command.subcommands.length > 0)
    return [
      `${fn}() {`,
      '  local curcontext=$curcontext state line',
      ...zshDispatcher(fn, command.options, command.subcommands),
      ...command.subcommands.flatMap((sub) => zshCommandFunctions(fn, sub)),
    ];
  const args = command.arguments.map(
    (a, i) => `'${i + 1}:${a.name}:${a.choices === undefined ? ' ' : `(${a.choices.join(' ')})`}'`,
  );
  return [`${fn}() {`, ...zshArguments([...command.options.map(zshOptionSpec), ...args], false), '}', ''];
}

function renderZsh(spec: ProgramSpec): string {
  const fn = `_${spec.name}`;
  const names = [spec.name, ...Object.keys(ALIASES)].join(' ');
  return [
    `#compdef ${names}`,
    `# zsh completion for ${spec.name}, written by \`${spec.name} completion zsh\` from its --help.`,
    `# Installed by \`${spec.name} install-unit\` as ${ZSH_COMPLETIONS}/${fn}.`,
    '',
    ...spec.commands.flatMap((command) => zshCommandFunctions(fn, command)),
    `${fn}() {`,
    '  local curcontext=$curcontext state line',
    '  case $service in',
    ...Object.entries(ALIASES).map(
      ([alias, command]) => `    ${alias}) ${fn}_${command.replace(/-/g, '_')}; return ;;`,
    ),
    '  esac',
    ...zshDispatcher(fn, spec.options, spec.commands),
    '# Autoloaded from fpath, this file is the body of the function: run it. Sourced, register it.',
    `if [[ $funcstack[1] == ${fn} ]]; then`,
    `  ${fn} "$@"`,
    'else',
    `  compdef ${fn} ${names}`,
    'fi',
    '',
  ].join('\n');
}
