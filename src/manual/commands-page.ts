import { ALIASES, type CommandSpec, type OptionSpec, type ProgramSpec } from '../cli/describe.js';
import { bold, italic, roffText, titleLine } from './roff.js';

// What the page says about the installation: defaults and paths, named once in the code.
export interface PageContext {
  version: string;
  configPath: string;
  indexPath: string;
  unitPath: string;
}

// Pure: xo-immutable-backups(8), one section per command, from the definitions --help prints.
export function renderCommandsPage(spec: ProgramSpec, context: PageContext): string {
  const name = spec.name;
  const commands = spec.commands.filter((c) => !c.isHelp);
  const aliases = Object.entries(ALIASES);
  return [
    titleLine(name, 8, roffText(`${name} ${context.version}`), 'System Administration'),
    // No hyphenation, ragged right: command names, options and paths stay whole.
    '.nh',
    '.ad l',
    '.SH NAME',
    `${roffText(name)} \\- ${roffText(lowerFirst(spec.description).replace(/\.$/, ''))}`,
    '.SH SYNOPSIS',
    `${bold(name)} ${italic('command')} [${italic('options')}]`,
    '.br',
    `${bold(name)} ${bold('help')} [${italic('command')}]`,
    ...aliases.flatMap(([alias]) => ['.br', `${bold(alias)} [${italic('options')}]`]),
    '.SH DESCRIPTION',
    roffText(spec.description),
    '.PP',
    roffText(
      "It runs as root on the file server that holds the remotes' disks. " +
        'The daemon (protect), run by the systemd unit install-unit writes, locks each backup as it completes and ' +
        'unlocks it once its window has passed; the other commands show, prove, lift and repair that protection.',
    ),
    '.PP',
    `The configuration is described in ${bold('xo-immutable-backups.json')}(5). ` +
      `${roffText('Each command prints its section of this page with')} ${bold('--help')}.`,
    ...(aliases.length === 0
      ? []
      : [
          '.PP',
          roffText(
            `Also installed under the names of @xen-orchestra/immutable-backups: ${aliases
              .map(([alias, command]) => `${alias} (${name} ${command})`)
              .join(' and ')}.`,
          ),
        ]),
    '.SH OPTIONS',
    ...spec.options.flatMap(optionLines),
    '.SH COMMANDS',
    ...commands.flatMap((command) => commandLines(name, command)),
    '.SH EXIT STATUS',
    ...afterHelpLines(spec.after, { exitCodesHeading: false }),
    ...filesAndSeeAlso(context),
    '',
  ].join('\n');
}

// FILES and SEE ALSO: the paths the installation uses, and where to read more.
function filesAndSeeAlso(context: PageContext): string[] {
  return [
    '.SH FILES',
    '.TP',
    italic(context.configPath),
    roffText('The configuration read by every command (--config to read another).'),
    '.TP',
    italic(context.indexPath),
    roffText(
      'The default indexPath: one entry per locked unit, and status.json, the heartbeat status reads to tell whether ' +
        'the daemon runs.',
    ),
    '.TP',
    italic(context.unitPath),
    roffText('The systemd unit install-unit writes, with its drop-in paths.conf.'),
    '.SH SEE ALSO',
    [
      `${bold('xo-immutable-backups.json')}(5)`,
      `${bold('chattr')}(1)`,
      `${bold('systemctl')}(1)`,
      `${bold('systemd.exec')}(5)`,
    ].join(',\n'),
    '.PP',
    roffText(
      'README.md and docs/ in the installed package, $(npm root -g)/xo-immutable-backups: installation, operations ' +
        '(alerts, restore, repair), troubleshooting, security.',
    ),
  ];
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

function optionLines(option: OptionSpec): string[] {
  const spellings = [option.short, option.long].filter((s): s is string => s !== undefined).map(bold);
  const value = option.argument === undefined ? '' : ` ${italic(option.argument)}`;
  const notes = [
    ...(option.defaultValue === undefined ? [] : [`default: ${option.defaultValue}`]),
    ...(option.mandatory ? ['required'] : []),
    ...(option.repeatable ? ['repeatable'] : []),
  ];
  const description = option.description.charAt(0).toUpperCase() + option.description.slice(1);
  return [
    '.TP',
    `${spellings.join(', ')}${value}`,
    roffText(`${description}${notes.length > 0 ? ` (${notes.join('; ')})` : ''}.`),
  ];
}

// A command's section, then one per subcommand (`hold start`), each as its own --help prints it.
function commandLines(program: string, command: CommandSpec, parents: readonly string[] = []): string[] {
  const name = [...parents, command.name].join(' ');
  const [, ...rest] = command.usage.split(' ');
  const usage =
    command.subcommands.length > 0 ? `${italic('command')} [${italic('options')}]` : roffText(rest.join(' '));
  return [
    `.SS ${roffText(name)}`,
    `${bold(`${program} ${name}`)} ${usage}`,
    '.PP',
    roffText(command.description),
    ...command.arguments.flatMap((argument) => [
      '.TP',
      italic(argument.name),
      roffText(
        `${argument.description.charAt(0).toUpperCase()}${argument.description.slice(1)}` +
          `${argument.choices === undefined ? '' : `: ${argument.choices.join(', ')}`}.`,
      ),
    ]),
    ...command.options.filter((o) => o.long !== '--help').flatMap(optionLines),
    ...afterHelpLines(command.after, { exitCodesHeading: true }),
    ...command.subcommands.flatMap((sub) => commandLines(program, sub, [...parents, command.name])),
  ];
}

// The text --help prints after a command's options: prose lines are joined into paragraphs, indented lines are
// examples kept as they are, and "Exit codes:" lists become tagged paragraphs.
function afterHelpLines(text: string, options: { exitCodesHeading: boolean }): string[] {
  const out: string[] = [];
  let prose: string[] = [];
  let example: string[] = [];
  let inExitCodes = false;
  const flush = (): void => {
    if (prose.length > 0) out.push('.PP', roffText(prose.join(' ')));
    if (example.length > 0) out.push('.PP', '.RS', '.nf', ...example.map(roffText), '.fi', '.RE');
    prose = [];
    example = [];
  };
  for (const line of text.split('\n')) {
    const code = /^\s+(\d+)\s+(.*)$/.exec(line);
    if (/^Exit codes\b.*:$/.test(line)) {
      flush();
      inExitCodes = true;
      if (options.exitCodesHeading) out.push('.PP', bold('Exit status:'));
    } else if (inExitCodes && code !== null) {
      out.push('.TP', bold(code[1]!), roffText(code[2]!));
    } else if (line.trim() === '') {
      flush();
      inExitCodes = false;
    } else if (/^\s/.test(line)) {
      if (prose.length > 0) flush();
      inExitCodes = false;
      example.push(line.trim());
    } else {
      if (example.length > 0) flush();
      inExitCodes = false;
      prose.push(line.trim());
    }
  }
  flush();
  return out;
}
