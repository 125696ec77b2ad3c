import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempFolder } from '../support/remote.js';

const script = path.resolve('scripts/check-folder-cycles.mjs');

function check(srcDir: string): { status: number | null; output: string } {
  const result = spawnSync(process.execPath, [script, srcDir], { encoding: 'utf8' });
  return { status: result.status, output: result.stdout + result.stderr };
}

async function writeSource(root: string, file: string, text: string): Promise<void> {
  await mkdir(path.dirname(path.join(root, file)), { recursive: true });
  await writeFile(path.join(root, file), text);
}

describe('the folder cycle check (npm run check)', () => {
  it('passes on our own src/', () => {
    const { status, output } = check(path.resolve('src'));
    expect(output).toContain('no import cycles');
    expect(status).toBe(0);
  });

  it('fails on two folders that import each other, naming the files', async () => {
    const root = await tempFolder();
    await writeSource(root, 'lift/apply.ts', "import { a } from '../status/report.js';\nexport const b = a;\n");
    await writeSource(
      root,
      'status/report.ts',
      "import type {\n  B,\n} from '../lift/apply.js';\nexport const a = 1;\n",
    );
    await writeSource(root, 'remote/model.ts', "import { a } from '../status/report.js';\n");
    const { status, output } = check(root);
    expect(status).toBe(1);
    expect(output).toContain('import cycle between folders: lift, status');
    expect(output).toContain('lift -> status (lift/apply.ts -> ../status/report.js)');
    expect(output).toContain('status -> lift (status/report.ts -> ../lift/apply.js)');
    expect(output).not.toContain('remote ->');
  });
});
