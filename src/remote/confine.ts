import { closeSync, constants, lstatSync, openSync, readlinkSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { yieldIfDue } from '../concurrency.js';
import { errnoCode } from '../errors.js';
import type { RemoteRoot } from './root.js';

// chattr follows symlinked parent folders: a folder is safe to act in only if the root still resolves to where it did
// at start and no folder below it is a symbolic link. undefined: it does not exist (any more).
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

// `dir` is the root or below it, written the way path.join writes it (no "//", ".", ".." or trailing "/").
function isPlainlyBelow(root: string, dir: string): boolean {
  if (root.length < 2 || root.endsWith('/') || !dir.startsWith(root)) return false;
  if (dir.length === root.length) return true;
  return (
    dir[root.length] === '/' &&
    !dir.endsWith('/') &&
    !dir.includes('//') &&
    !dir.includes('/./') &&
    !dir.includes('/../') &&
    !dir.endsWith('/.') &&
    !dir.endsWith('/..')
  );
}

// `dir` (the root or plainly below it) opened one folder at a time from the root, never following a link, for `act`
// to work in through `/proc/self/fd/N/<name>` (the kernel's openat: nothing above is resolved again). undefined: a
// folder on the way is gone or is not a real folder, or the root no longer resolves where it did at start.
export function inHeldFolder<T>(remote: RemoteRoot, dir: string, act: (held: string) => T): T | undefined {
  const { root } = remote;
  if (!isPlainlyBelow(root, dir)) return undefined;
  const opened: number[] = [];
  try {
    const held = walkFolders(
      remote,
      dir
        .slice(root.length)
        .split('/')
        .filter((n) => n !== ''),
      opened,
    );
    return held === undefined ? undefined : act(held);
  } finally {
    for (const fd of opened) closeSync(fd);
  }
}

function walkFolders(remote: RemoteRoot, names: readonly string[], opened: number[]): string | undefined {
  try {
    let fd = openSync(remote.root, constants.O_RDONLY | constants.O_DIRECTORY);
    opened.push(fd);
    if (readlinkSync(`/proc/self/fd/${fd}`) !== remote.realRoot) return undefined;
    for (const name of names) {
      fd = openSync(`/proc/self/fd/${fd}/${name}`, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
      opened.push(fd);
    }
    return `/proc/self/fd/${fd}`;
  } catch (error) {
    if (['ENOENT', 'ENOTDIR', 'ELOOP'].includes(errnoCode(error) ?? '')) return undefined;
    throw error;
  }
}
