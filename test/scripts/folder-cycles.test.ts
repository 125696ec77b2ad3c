import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempFolder } from '../support/remote.js';

const script = path.resolve('scripts/check-folder-cycles.mjs');

function check(srcDir: string, layers?: string): { status: number | null; output: string } {
  const args = [script, srcDir, ...(layers === undefined ? [] : ['--layers', layers])];
  const result = spawnSync(process.execPath, args, { encoding: 'utf8' });
  return { status: result.status, output: result.stdout + result.stderr };
}

async function writeSource(root: string, file: string, text: string): Promise<void> {
  await mkdir(path.dirname(path.join(root, file)), { recursive: true });
  await writeFile(path.join(root, file), text);
}

// A fixture tree with its own layers, as docs/architecture.md states ours: lift and status share a layer.
async function fixture(): Promise<{ root: string; layers: string }> {
  const base = await tempFolder();
  const root = path.join(base, 'src');
  const layers = path.join(base, 'architecture.md');
  await writeFile(layers, '# Architecture\n\n```layers\ncli\nlift status   # use cases\nremote\n(root)\n```\n');
  await writeSource(root, 'remote/model.ts', 'export const model = 1;\n');
  await writeSource(root, 'lift/apply.ts', "import { model } from '../remote/model.js';\nexport const b = model;\n");
  await writeSource(root, 'cli/main.ts', "import { b } from '../lift/apply.js';\nexport const main = b;\n");
  return { root, layers };
}

describe('the structure check (npm run check:cycles)', () => {
  it('passes on our own src/, against the layers of docs/architecture.md', () => {
    const { status, output } = check(path.resolve('src'));
    expect(output).toContain('no import cycles');
    expect(status).toBe(0);
  });

  it('checks the folder it is given against the layers of docs/architecture.md by default', async () => {
    const { root } = await fixture();
    await writeSource(root, 'remote/scan.ts', "import { main } from '../cli/main.js';\nexport const s = main;\n");
    const { status, output } = check(root);
    expect(status).toBe(1);
    expect(output).toContain('remote/scan.ts imports ../cli/main.js: cli/ is above remote/ (docs/architecture.md');
  });

  it('passes on a fixture that keeps its layers', async () => {
    const { root, layers } = await fixture();
    const { status, output } = check(root, layers);
    expect(output).toContain('no import against their layers');
    expect(status).toBe(0);
  });

  it('fails on two folders that import each other, naming the files', async () => {
    const { root, layers } = await fixture();
    await writeSource(
      root,
      'status/report.ts',
      "import type {\n  B,\n} from '../lift/apply.js';\nexport const a = 1;\n",
    );
    await writeSource(root, 'lift/plan.ts', "import { a } from '../status/report.js';\nexport const c = a;\n");
    const { status, output } = check(root, layers);
    expect(status).toBe(1);
    expect(output).toContain('import cycle between folders: lift, status');
    expect(output).toContain('lift -> status (lift/plan.ts -> ../status/report.js)');
    expect(output).toContain('status -> lift (status/report.ts -> ../lift/apply.js)');
    expect(output).not.toContain('remote ->');
  });

  it('fails on a cycle between files of one folder, type imports included', async () => {
    const { root, layers } = await fixture();
    await writeSource(root, 'cli/io.ts', "import type { main } from './main.js';\nexport type Io = typeof main;\n");
    await writeSource(root, 'cli/main.ts', "import type { Io } from './io.js';\nexport const main = 1;\n");
    const { status, output } = check(root, layers);
    expect(status).toBe(1);
    expect(output).toContain('import cycle between files: cli/io.ts, cli/main.ts');
    expect(output).toContain('  cli/io.ts -> cli/main.ts');
  });

  it('fails on an import of a higher layer or of the same layer, and on a folder in no layer', async () => {
    const { root, layers } = await fixture();
    await writeSource(root, 'remote/scan.ts', "import { b } from '../lift/apply.js';\nexport const s = b;\n");
    await writeSource(root, 'status/report.ts', "import { b } from '../lift/apply.js';\nexport const r = b;\n");
    await writeSource(root, 'stray/x.ts', 'export const x = 1;\n');
    const { status, output } = check(root, layers);
    expect(status).toBe(1);
    expect(output).toContain('remote/scan.ts imports ../lift/apply.js: lift/ is above remote/');
    expect(output).toContain('status/report.ts imports ../lift/apply.js: lift/ is in the same layer as status/');
    expect(output).toContain('stray/ is in no layer');
  });

  it('fails on a file over 300 lines and a function over 60, naming them', async () => {
    const { root, layers } = await fixture();
    const body = Array.from({ length: 60 }, (_, i) => `  const v${i} = ${i};`).join('\n');
    await writeSource(root, 'lift/long.ts', `export function tooLong(): number {\n${body}\n  return 0;\n}\n`);
    await writeSource(
      root,
      'lift/fits.ts',
      `export const fits = (): number => {\n${body.split('\n').slice(3).join('\n')}\n  return 0;\n};\n`,
    );
    await writeSource(
      root,
      'lift/big.ts',
      Array.from({ length: 301 }, (_, i) => `export const c${i} = ${i};`).join('\n'),
    );
    const { status, output } = check(root, layers);
    expect(status).toBe(1);
    expect(output).toContain('lift/long.ts: tooLong has 63 lines, more than 60');
    expect(output).not.toContain('fits');
    expect(output).toContain('lift/big.ts has 301 lines, more than 300');
  });
});
