import { readdirSync, readFileSync } from 'node:fs';

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
