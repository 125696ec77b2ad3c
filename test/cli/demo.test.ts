import { execFileSync, spawn } from 'node:child_process';
import { chmod, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { removeLocked, tempFolder, waitFor } from '../support/remote.js';

// The demo as an admin runs it: its own process through the bin launcher, interrupted the way Ctrl-C does.
const BIN = path.resolve('bin/xo-immutable-backups.js');

interface DemoRun {
  output: () => string;
  exited: Promise<number | null>;
  interrupt: (signal: NodeJS.Signals) => void;
}

function startDemo(env: NodeJS.ProcessEnv = process.env): DemoRun {
  const child = spawn(process.execPath, [BIN, 'demo'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { output: () => output, exited, interrupt: (signal) => child.kill(signal) };
}

// The demo's folder, from its first line ("Sample XO remote: /tmp/xo-immutable-demo-XXXXXX/remote ...").
function demoFolder(output: string): string | undefined {
  const match = /Sample XO remote: (\S+)\/remote /.exec(output);
  return match?.[1];
}

// Interrupts the demo once `line` is out. The demo may finish its last steps before the signal lands (a loaded
// machine shows the line late): such a run proves nothing about interruption and is tried again, up to 5 times.
async function interruptAfter(line: RegExp, signal: NodeJS.Signals): Promise<void> {
  for (let attempt = 1; attempt <= 5; attempt++) {
    const demo = startDemo();
    let folder: string | undefined;
    try {
      await waitFor(() => line.test(demo.output()), `the demo's line ${String(line)}`, 20_000);
      folder = demoFolder(demo.output());
      expect(folder).toMatch(/xo-immutable-demo-/);
      demo.interrupt(signal);
      const code = await demo.exited;
      expect(existsSync(folder!)).toBe(false);
      if (code === 0 && attempt < 5) continue;
      expect(code, demo.output()).toBe(signal === 'SIGINT' ? 130 : 143);
      expect(demo.output()).toContain(`Interrupted by ${signal}`);
      expect(demo.output()).toContain(`Cleaned up: unlocked and removed ${folder}.`);
      return;
    } finally {
      demo.interrupt('SIGKILL');
      await demo.exited;
      folder ??= demoFolder(demo.output());
      if (folder !== undefined) await removeLocked(folder);
    }
  }
}

describe('demo', () => {
  it('cleans up its folder when interrupted by SIGINT right after its first line', async () => {
    await interruptAfter(/^Sample XO remote: /m, 'SIGINT');
  });

  it('cleans up its folder, immutable files included, when interrupted by SIGTERM once backups are locked', async () => {
    // After line 2 the catch-up has locked files; steps 3 to 8 still take a few hundred ms.
    await interruptAfter(/^2\. /m, 'SIGTERM');
  });

  it('prints the one command that finishes a clean-up that failed', async () => {
    // A stand-in perl first on PATH runs the real flag helper behind a filter that ends its input at the demo's final
    // unlock of its whole folder (a request rooted at the folder itself, its one record "R - ."): the helper stops
    // without answering it, every time it is asked, so the folder keeps immutable files and cannot be removed.
    const bin = await tempFolder('xo-immutable-fakebin-');
    const demoPrefix = path.join(os.tmpdir(), 'xo-immutable-demo-');
    const realPerl = execFileSync('sh', ['-c', 'command -v perl'], { encoding: 'utf8' }).trim();
    const filter =
      '$| = 1; $/ = "\\0"; my $prefix = shift; my @last = ("", ""); while (defined(my $field = <STDIN>)) { ' +
      'exit 0 if $field eq "R - .\\0" && $last[0] =~ m{\\A\\Q$prefix\\E[^/]*\\0\\z}; print $field; @last = ($last[1], $field) }';
    await writeFile(
      path.join(bin, 'perl'),
      `#!/bin/sh\n[ "$#" -eq 1 ] || exec ${realPerl} "$@"\n${realPerl} -e '${filter}' '${demoPrefix}' | ${realPerl} "$@"\n`,
    );
    await chmod(path.join(bin, 'perl'), 0o755);
    const demo = startDemo({ ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` });
    let folder: string | undefined;
    try {
      const code = await demo.exited;
      folder = demoFolder(demo.output());
      expect(code, demo.output()).toBe(1);
      const finish = `chattr -R -i ${folder} && rm -rf ${folder}`;
      expect(demo.output()).toContain(`Could not clean up ${folder} (`);
      expect(demo.output()).toContain(`To finish: ${finish}\n`);
      expect(existsSync(folder!)).toBe(true);
      execFileSync('sh', ['-c', finish]);
      expect(existsSync(folder!)).toBe(false);
    } finally {
      demo.interrupt('SIGKILL');
      await demo.exited;
      folder ??= demoFolder(demo.output());
      if (folder !== undefined) await removeLocked(folder);
    }
  });
});
