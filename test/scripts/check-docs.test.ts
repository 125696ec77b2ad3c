import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempFolder } from '../support/remote.js';

const script = path.resolve('scripts/check-docs.mjs');

function check(root: string): { status: number | null; output: string } {
  const result = spawnSync(process.execPath, [script, root], { encoding: 'utf8' });
  return { status: result.status, output: result.stdout + result.stderr };
}

async function writeDoc(root: string, file: string, text: string): Promise<void> {
  await mkdir(path.dirname(path.join(root, file)), { recursive: true });
  await writeFile(path.join(root, file), text);
}

// A small docs tree every test starts from: it passes as it is.
async function goodDocs(): Promise<string> {
  const root = await tempFolder();
  await writeDoc(
    root,
    'README.md',
    [
      '# Tool',
      '',
      'See [the commands](docs/commands.md#lift---all), [its options](docs/commands.md#options-1),',
      '[the sample](config.sample.json), [XO](https://xen-orchestra.com) and [below](#a-section-with-code-and-more).',
      '',
      '| Command | What |',
      '| --- | --- |',
      `| \`lift\` | ${'x'.repeat(290)} |`,
      '',
      '## A section: with `code`, and more!',
      '',
      '```md',
      `| not a table, a code block | ${'y'.repeat(400)} |`,
      '[not a link](nowhere.md)',
      '```',
      '',
      'In code: `[not a link](nowhere.md)`.',
    ].join('\n'),
  );
  await writeDoc(root, 'config.sample.json', '{}');
  await writeDoc(
    root,
    'docs/commands.md',
    '# Commands\n\n## `lift --all`\n\n## Options\n\n## Options\n\n## VM backups: `xo-vm-backups/<vmUuid>/`\n\n' +
      'Back to [the README](../README.md), [VM backups](#vm-backups-xo-vm-backupsvmuuid).\n',
  );
  // Folders that are not docs: never read.
  await writeDoc(root, 'node_modules/x/README.md', '[broken](nowhere.md)\n');
  return root;
}

describe('the docs check (npm run check)', () => {
  it('passes on docs whose cells are short and whose links resolve, GitHub heading ids included', async () => {
    const { status, output } = check(await goodDocs());
    expect(output).toContain('docs: 2 Markdown files, no table cell over 300 characters, every relative link resolves');
    expect(status).toBe(0);
  });

  it('fails on a table cell over 300 characters, naming the file, line and cell', async () => {
    const root = await goodDocs();
    await writeDoc(
      root,
      'docs/security.md',
      `# S\n\n| Threat | Defence |\n| --- | --- |\n| a | ${'z'.repeat(301)} |\n`,
    );
    const { status, output } = check(root);
    expect(output).toContain('docs/security.md:5: table cell 2 has 301 characters (at most 300)');
    expect(status).toBe(1);
  });

  it('fails on a relative link to a missing file or a missing anchor, and names each', async () => {
    const root = await goodDocs();
    await writeDoc(
      root,
      'docs/ops.md',
      '# Ops\n\nSee [gone](gone.md), [no anchor](commands.md#options-2) and [here](#nothing-here).\n',
    );
    const { status, output } = check(root);
    expect(output).toContain('docs/ops.md:3: links to gone.md: no such file');
    expect(output).toContain('docs/ops.md:3: links to commands.md#options-2: no heading or anchor "options-2"');
    expect(output).toContain('docs/ops.md:3: links to #nothing-here: no heading or anchor "nothing-here"');
    expect(output).toContain('3 problem(s) in the docs');
    expect(status).toBe(1);
  });
});
