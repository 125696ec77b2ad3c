import { realpathSync } from 'node:fs';
import path from 'node:path';
import { yieldIfDue } from '../concurrency.js';
import { errnoCode } from '../errors.js';
import type { RemoteContext } from './context.js';

// Where a folder under the remote root really is when no link is followed on the way.
function expectedRealPath(remote: Pick<RemoteContext, 'root' | 'realRoot'>, dir: string): string {
  return path.join(remote.realRoot, path.relative(remote.root, dir));
}

// chattr follows symlinked parent folders: a folder is safe to act in only if resolving it changes nothing.
// undefined when it does not exist (any more); a link loop is not a real folder; any other error is thrown.
export async function isRealFolder(remote: Pick<RemoteContext, 'root' | 'realRoot'>, dir: string): Promise<boolean | undefined> {
  try {
    await yieldIfDue();
    return realpathSync.native(dir) === expectedRealPath(remote, dir);
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    if (code === 'ELOOP') return false;
    throw error;
  }
}
