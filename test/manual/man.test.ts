import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { renderManPages } from '../../src/manual/pages.js';
import { runCli } from '../support/cli.js';
import { requireInCi } from '../support/tools.js';

const pages = renderManPages(readFileSync('config.sample.json', 'utf8'));
const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as { man: string[]; files: string[] };
const groff = requireInCi('groff', 'groff-base');

// A page as man shows it: plain text, wide enough that no option or path is broken across lines.
function rendered(file: string): string {
  return execFileSync('groff', ['-man', '-Tutf8', '-P-cbou', '-rLL=200n', file], { encoding: 'utf8' });
}

// The commands --help lists, and the options each command's --help lists, read from the real CLI's output.
async function helpFromCli(): Promise<Map<string, string[]>> {
  const top = await runCli(['--help']);
  const listed = top.stdout.slice(top.stdout.indexOf('\nCommands:\n'));
  const commands = [...listed.matchAll(/^ {2}([a-z][a-z-]*)(?: \[options\])?(?: <\w+>| \[\w+\])?\s/gm)]
    .map((m) => m[1]!)
    .filter((name) => name !== 'help');
  const options = new Map<string, string[]>();
  for (const [command, listed] of await Promise.all(
    commands.map(async (command) => [command, await optionsOf([command])] as const),
  ))
    options.set(command, listed);
  return options;
}

// The options a command's --help lists.
async function optionsOf(command: string[]): Promise<string[]> {
  const help = (await runCli([...command, '--help'])).stdout;
  const block = help.slice(help.indexOf('\nOptions:\n'));
  return [...block.matchAll(/^ {2}(?:(-\w), )?(--[a-z][a-z-]*)/gm)].flatMap((m) => m.slice(1).filter(Boolean));
}

describe('man pages', () => {
  it('in man/ are the ones the command definitions and the config schema give (npm run build writes them)', () => {
    expect(manifest.man.map((file) => path.basename(file)).sort()).toEqual(pages.map((p) => p.file).sort());
    expect(manifest.files).toContain('man');
    for (const page of pages)
      expect(readFileSync(path.join('man', page.file), 'utf8'), `man/${page.file} is stale: run npm run build`).toBe(
        page.text,
      );
  });

  it.skipIf(!groff)('render with groff without a warning (groff -ww)', () => {
    for (const page of pages) {
      const run = spawnSync('groff', ['-man', '-Tutf8', '-ww', '-z', path.join('man', page.file)], {
        encoding: 'utf8',
      });
      expect(run.stderr, page.file).toBe('');
      expect(run.status).toBe(0);
    }
  });

  it.skipIf(!groff)('xo-immutable-backups(8) has a section per command of --help, naming each option', async () => {
    const text = rendered('man/xo-immutable-backups.8');
    const sections = text.split(/\n {3}(?=[a-z][a-z -]*\n)/);
    const help = await helpFromCli();
    expect(help.size).toBeGreaterThan(8);
    expect(help.get('lift')).toEqual(expect.arrayContaining(['-c', '--config', '--accept-clock']));
    for (const sub of ['start', 'end', 'list']) help.set(`hold ${sub}`, await optionsOf(['hold', sub]));
    expect(help.get('hold start')).toEqual(expect.arrayContaining(['--remote', '--vm', '--for', '--backup']));
    for (const [command, options] of help) {
      const section = sections.find((s) => s.startsWith(`${command}\n`));
      expect(section, `a section for ${command}`).toBeDefined();
      expect(section).toContain(`xo-immutable-backups ${command}`);
      for (const option of options.filter((o) => o !== '-h' && o !== '--help'))
        expect(section, `${command} ${option}`).toMatch(new RegExp(`(^|[ ,])${option}\\b`, 'm'));
    }
    for (const name of ['xo-immutable-remote', 'xo-lift-remote-immutability']) expect(text).toContain(name);
  });

  it.skipIf(!groff)('xo-immutable-backups.json(5) describes every key of the config schema', () => {
    const text = rendered('man/xo-immutable-backups.json.5');
    const remote = configSchema.properties.remotes.additionalProperties.properties;
    for (const [key, property] of [...Object.entries(configSchema.properties), ...Object.entries(remote)]) {
      expect('description' in property && property.description !== '', `${key} has a description`).toBe(true);
      expect(text, key).toMatch(new RegExp(`^ {7}${key.replace('$', '\\$')} \\(`, 'm'));
    }
    expect(text).toContain('"immutabilityDuration": "7d"');
  });
});
