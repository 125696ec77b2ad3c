import { lstatSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { yieldIfDue } from '../concurrency.js';
import { errnoCode } from '../errors.js';
import { isPlainlyBelow } from './held.js';
import type { RemoteRoot } from './root.js';

// Used only by protect/reconcile.ts and lift/vm.ts, on the folder they are given, for their clear warning:
// reads are confined by the held remote's walk and flag changes by the flag helper's (docs/architecture.md,
// "Confinement"). A folder is real if the root still resolves to where it did at start and no folder below it is a
// symbolic link. undefined: it does not exist (any more).
// `known`: folders this pass already found real; an lstat of each beats a realpath of every unit (docs/performance.md).
export async function isRealFolder(
  remote: RemoteRoot,
  dir: string,
  known: Set<string> = new Set(),
): Promise<boolean | undefined> {
  try {
    await yieldIfDue();
    const { root } = remote;
    if (!isPlainlyBelow(root, dir))
      return realpathSync.native(dir) === path.join(remote.realRoot, path.relative(root, dir));
    if (!known.has(root)) {
      if (realpathSync.native(root) !== remote.realRoot) return false;
      known.add(root);
    }
    // Each folder from the root down, by slicing: this runs for every unit locked or lifted, so it allocates little.
    for (let end = root.length; end < dir.length;) {
      end = dir.indexOf('/', end + 1);
      if (end === -1) end = dir.length;
      const folder = dir.slice(0, end);
      if (known.has(folder)) continue;
      const stats = lstatSync(folder, { throwIfNoEntry: false });
      if (stats === undefined) return undefined;
      if (stats.isSymbolicLink()) return false;
      known.add(folder);
    }
    return true;
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    if (code === 'ELOOP') return false;
    throw error;
  }
}
