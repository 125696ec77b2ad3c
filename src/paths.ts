import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { errnoCode } from './errors.js';

// True when `child` is `parent` or lies below it (lexically; the daemon checks real paths again at start).
export function isInside(child: string, parent: string): boolean {
  const relative = path.relative(parent, child);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

// The real path a folder has or would have: its nearest existing ancestor resolved, the rest appended.
export async function realpathOfNearest(target: string): Promise<string> {
  const missing: string[] = [];
  let current = path.resolve(target);
  for (;;) {
    try {
      return path.join(await realpath(current), ...missing.reverse());
    } catch (error) {
      const parent = path.dirname(current);
      if (errnoCode(error) !== 'ENOENT' || parent === current) throw error;
      missing.push(path.basename(current));
      current = parent;
    }
  }
}
