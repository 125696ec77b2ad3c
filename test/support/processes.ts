import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { stopBeforeCleanup, waitFor } from './remote.js';

// The children of a process, with their state letter (T: stopped).
export function childrenOf(pid: number): { pid: number; state: string }[] {
  const found: { pid: number; state: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(ppid) === pid) found.push({ pid: Number(name), state: state! });
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

// SIGKILL, whether or not the process is still there.
export function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

// A command of the CLI killed part-way through a directory unit, as a crash would: its flag helper stops itself after
// the first file it changes inside one (XO_IMMUTABLE_FLAGS_STOP_INSIDE), then the command and the helper are killed.
// Both are killed at cleanup too, whatever the test meets before.
export async function killInsideDirectoryUnit(args: readonly string[]): Promise<void> {
  const cli = spawn(process.execPath, [path.resolve('bin/xo-immutable-backups.js'), ...args], {
    env: { ...process.env, XO_IMMUTABLE_FLAGS_STOP_INSIDE: '1' },
  });
  let said = '';
  cli.stdout.on('data', (chunk: Buffer) => (said += chunk.toString()));
  cli.stderr.on('data', (chunk: Buffer) => (said += chunk.toString()));
  const exited = new Promise((resolve) => cli.on('exit', resolve));
  let helper: number | undefined;
  const killBoth = async (): Promise<void> => {
    kill(cli.pid!);
    await exited;
    if (helper !== undefined) kill(helper);
  };
  stopBeforeCleanup(killBoth);
  await waitFor(
    () => (helper = childrenOf(cli.pid!).find((child) => child.state === 'T')?.pid) !== undefined,
    () => `the flag helper to stop inside a directory unit (the command said: ${said})`,
    30_000,
  );
  await killBoth();
}
