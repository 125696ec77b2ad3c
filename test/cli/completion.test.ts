import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderCompletion } from '../../src/cli/completion.js';
import { ALIASES, describeProgram, type ProgramSpec } from '../../src/cli/describe.js';
import { createProgram } from '../../src/cli/main.js';
import { runCli } from '../support/cli.js';
import { tempFolder } from '../support/remote.js';
import { requireInCi } from '../support/tools.js';

const spec: ProgramSpec = describeProgram(
  createProgram({ out: () => undefined, err: () => undefined }, () => undefined),
);
const PROGRAM = spec.name;
const commandNames = spec.commands.map((c) => c.name);
const flagsOf = (options: ProgramSpec['options']): string[] =>
  options.flatMap((o) => (o.short === undefined ? [o.long] : [o.short, o.long]));

interface Case {
  // The words on the command line, the last one being completed.
  words: string[];
  // What must be offered: exactly these, or at least these.
  exactly?: string[];
  includes?: string[];
  // Compare file names only (zsh offers the last part of a path, bash the whole path).
  basenames?: boolean;
}

// What every shell must offer: each command, each option of each command, values where --help names them.
function cases(files: { dir: string }): Case[] {
  const all: Case[] = [
    { words: [PROGRAM, ''], exactly: commandNames },
    { words: [PROGRAM, '-'], exactly: flagsOf(spec.options) },
    ...commandNames.map((name) => ({ words: [PROGRAM, name.slice(0, 3)], includes: [name] })),
    { words: [PROGRAM, 'help', ''], exactly: commandNames },
    { words: [PROGRAM, 'completion', ''], exactly: ['bash', 'zsh'] },
    // A value: a file for --config, a folder for --root, nothing for an id.
    { words: [PROGRAM, 'status', '--config', `${files.dir}/co`], exactly: ['config.json'], basenames: true },
    { words: [PROGRAM, 'check', '--root', `${files.dir}/s`], exactly: ['sub'], basenames: true },
    { words: [PROGRAM, 'lift', '--remote', ''], exactly: [] },
    { words: [PROGRAM, 'lift', '--remote', 'main', '--ac'], exactly: ['--accept-clock'] },
    // A command's own commands (hold start|end|list), then each one's options and values.
    { words: [PROGRAM, 'hold', ''], exactly: ['start', 'end', 'list'] },
    { words: [PROGRAM, 'hold', 'start', '--config', `${files.dir}/co`], exactly: ['config.json'], basenames: true },
    { words: [PROGRAM, 'hold', 'list', '--remote', 'main', '--j'], exactly: ['--json'] },
    ...Object.entries(ALIASES).map(([alias, command]) => ({
      words: [alias, '-'],
      exactly: flagsOf(spec.commands.find((c) => c.name === command)!.options),
    })),
  ];
  for (const command of spec.commands.filter((c) => !c.isHelp)) {
    all.push({ words: [PROGRAM, command.name, '-'], exactly: flagsOf(command.options) });
    for (const sub of command.subcommands)
      all.push({ words: [PROGRAM, command.name, sub.name, '-'], exactly: flagsOf(sub.options) });
  }
  return all;
}

// A folder to complete in: two files starting alike, and a folder and a file starting alike.
async function fixtureFiles(): Promise<{ base: string; dir: string }> {
  const base = await tempFolder();
  const dir = path.join(base, 'files');
  await mkdir(path.join(dir, 'sub'), { recursive: true });
  await writeFile(path.join(dir, 'config.json'), '{}');
  await writeFile(path.join(dir, 'other.json'), '{}');
  await writeFile(path.join(dir, 'sub-file'), '');
  return { base, dir };
}

function expectOffers(results: string[][], all: Case[]): void {
  expect(results).toHaveLength(all.length);
  all.forEach((c, i) => {
    const offered = [...new Set(results[i]!.map((o) => (c.basenames ? path.basename(o) : o)))].sort();
    if (c.exactly !== undefined) expect(offered, c.words.join(' ')).toEqual([...c.exactly].sort());
    for (const word of c.includes ?? []) expect(offered, c.words.join(' ')).toContain(word);
  });
}

describe('xo-immutable-backups completion', () => {
  it('prints the script for bash and zsh, and refuses another shell', async () => {
    for (const shell of ['bash', 'zsh'] as const) {
      const run = await runCli(['completion', shell]);
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      expect(run.stdout).toBe(renderCompletion(shell, spec));
    }
    const fish = await runCli(['completion', 'fish']);
    expect(fish.status).toBe(2);
    expect(fish.stderr).toContain('bash, zsh');
  });

  it("is offered for the package's every command name", async () => {
    const { readFile } = await import('node:fs/promises');
    const manifest = JSON.parse(await readFile('package.json', 'utf8')) as { bin: Record<string, string> };
    expect(Object.keys(manifest.bin).sort()).toEqual([PROGRAM, ...Object.keys(ALIASES)].sort());
  });

  it('completes each command and option in a real bash', async () => {
    const files = await fixtureFiles();
    const all = cases(files);
    const script = path.join(files.base, 'completion.bash');
    await writeFile(script, renderCompletion('bash', spec));
    // As bash calls a completion function: COMP_WORDS and COMP_CWORD set, COMPREPLY read back.
    const driver = [
      `source ${JSON.stringify(script)}`,
      'offer() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _xo_immutable_backups; printf \'OFFER:%s\\n\' "${COMPREPLY[@]}"; echo END-OF-OFFERS; }',
      ...all.map((c) => `offer ${c.words.map((w) => `'${w}'`).join(' ')}`),
    ].join('\n');
    const run = spawnSync('bash', ['--norc', '--noprofile', '-c', driver], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expectOffers(parseOffers(run.stdout), all);
  });

  const BASH_COMPLETION = '/usr/share/bash-completion/bash_completion';
  const bashCompletion = existsSync(BASH_COMPLETION) || process.env.CI !== undefined;
  it.skipIf(!bashCompletion)('is loaded by bash-completion from <data dir>/bash-completion/completions', async () => {
    const files = await fixtureFiles();
    // A data folder of XDG_DATA_DIRS (/usr/local/share by default), where an admin may put `completion bash` by hand.
    const completions = path.join(files.base, 'share', 'bash-completion', 'completions');
    await mkdir(completions, { recursive: true });
    await writeFile(path.join(completions, PROGRAM), renderCompletion('bash', spec));
    const driver = [
      `source ${BASH_COMPLETION}`,
      // What bash runs on the first Tab for a command without a completion yet.
      `_completion_loader ${PROGRAM}`,
      `COMP_WORDS=(${PROGRAM} lift --acc); COMP_CWORD=2; COMPREPLY=()`,
      `$(complete -p ${PROGRAM} | sed -E 's/^complete -F ([^ ]+) .*/\\1/')`,
      'printf \'OFFER:%s\\n\' "${COMPREPLY[@]}"; echo END-OF-OFFERS',
    ].join('\n');
    const run = spawnSync('bash', ['--norc', '--noprofile', '-c', driver], {
      encoding: 'utf8',
      env: { ...process.env, XDG_DATA_DIRS: `${path.join(files.base, 'share')}:/usr/share` },
    });
    expect(run.stderr).toBe('');
    expect(parseOffers(run.stdout)).toEqual([['--accept-clock']]);
  });

  const zsh = requireInCi('zsh', 'zsh');
  it.skipIf(!zsh)('completes each command and option in a real zsh (compinit, Tab in a pty)', async () => {
    const files = await fixtureFiles();
    const all = cases(files);
    const fpath = path.join(files.base, 'site-functions');
    await mkdir(fpath);
    // Installed as docs/installation.md says: a file named after the function, in a folder of $fpath.
    await writeFile(path.join(fpath, `_${PROGRAM}`), renderCompletion('zsh', spec));
    const run = spawnSync(
      'zsh',
      ['-f', 'test/support/zsh-complete.zsh', fpath, ...all.map((c) => c.words.map(zshWord).join(' '))],
      { encoding: 'utf8', timeout: 120_000 },
    );
    expect(run.status).toBe(0);
    expectOffers(parseOffers(run.stdout), all);
  });
});

// A word as typed at the prompt; an empty last word is the space after the previous one.
function zshWord(word: string): string {
  return word.replace(/([\\ '"])/g, '\\$1');
}

// The matches offered per line, from "OFFER:<match>" lines each closed by "END-OF-OFFERS" (terminal noise around).
function parseOffers(output: string): string[][] {
  const results: string[][] = [];
  let current: string[] = [];
  for (const match of output.matchAll(/OFFER:([^\r\n\x1b]*)|END-OF-OFFERS/g)) {
    if (match[0] === 'END-OF-OFFERS') {
      results.push(current);
      current = [];
    } else if (match[1] !== '') current.push(match[1]!);
  }
  return results;
}
