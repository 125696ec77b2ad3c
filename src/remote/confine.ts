import { lstatSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { yieldIfDue } from '../concurrency.js';
import { errnoCode } from '../errors.js';
import type { RemoteContext } from './context.js';

// chattr follows symlinked parent folders: a folder is safe to act in only if resolving it changes nothing, i.e. the
// root still resolves to where it did at start and no folder below it is a symbolic link.
// undefined when it does not exist (any more); a link loop is not a real folder; any other error is thrown.
// `known`: folders this pass already found real (a lock batch, a folder's reconcile), not looked at again: the units of
// one backup share all but their last folder, and a realpath of each cost 22 us here against 3 us an lstat.
export async function isRealFolder(remote: Pick<RemoteContext, 'root' | 'realRoot'>, dir: string, known: Set<string> = new Set()): Promise<boolean | undefined> {
  try {
    await yieldIfDue();
    const relative = path.relative(remote.root, dir);
    if (relative.startsWith('..') || path.isAbsolute(relative)) return realpathSync.native(dir) === path.join(remote.realRoot, relative);
    if (!known.has(remote.root)) {
      if (realpathSync.native(remote.root) !== remote.realRoot) return false;
      known.add(remote.root);
    }
    let folder = remote.root;
    for (const name of relative === '' ? [] : relative.split(path.sep)) {
      folder = path.join(folder, name);
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
