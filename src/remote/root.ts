import { readdir, realpath, stat } from 'node:fs/promises';
import type { RemoteConfig } from '../config/schema.js';
import { AppError, errnoCode } from '../errors.js';

// A remote's root as configured, and as resolved once at start: everything acted on must still resolve below it.
export interface RemoteRoot {
  root: string;
  realRoot: string;
  // With the remote's key file: what XO wrote, decrypted (remote/encryption.ts); undefined when it does not decrypt.
  decrypt?: (data: Buffer) => Buffer | undefined;
}

// The remote root must exist and be a directory; it is never created, so that an unmounted remote is never
// mistaken for an empty one. Returns its real path, against which everything acted on is checked.
export async function resolveRemoteRoot(remote: RemoteConfig): Promise<string> {
  try {
    const stats = await stat(remote.root);
    if (!stats.isDirectory()) {
      throw new AppError('REMOTE_NOT_DIRECTORY', `Remote "${remote.id}": ${remote.root} is not a directory`, {
        value: remote.root,
        hint: `set remotes.${remote.id}.root to the folder XO uses as the remote`,
      });
    }
    const realRoot = await realpath(remote.root);
    return realRoot;
  } catch (error) {
    if (error instanceof AppError) throw error;
    throw new AppError(
      'REMOTE_NOT_FOUND',
      `Remote "${remote.id}": ${remote.root} ` +
        (errnoCode(error) === 'ENOENT' ? 'does not exist' : `cannot be read (${(error as Error).message})`),
      {
        value: remote.root,
        hint:
          `mount the remote, or fix remotes.${remote.id}.root; ` +
          'the daemon will not create it, so that an unmounted remote is never mistaken for an empty one',
        cause: error,
      },
    );
  }
}

// XO sets up encryption only on a root holding nothing but dotfiles and its own two files ("Remote directory must be
// empty."): until XO has written something else there, the daemon writes nothing at the root.
export async function isUntouchedByXo(root: string): Promise<boolean> {
  const names = await readdir(root);
  return names.every((name) => name.startsWith('.') || name === 'encryption.json');
}
