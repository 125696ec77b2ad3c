import { readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { RemoteConfig } from '../config/schema.js';
import { AppError, errnoCode } from '../errors.js';

// A remote's root as configured, and as resolved once at start: everything acted on must still resolve below it.
export interface RemoteRoot {
  root: string;
  realRoot: string;
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
    return await realpath(remote.root);
  } catch (error) {
    if (error instanceof AppError) throw error;
    throw new AppError(
      'REMOTE_NOT_FOUND',
      `Remote "${remote.id}": ${remote.root} ${errnoCode(error) === 'ENOENT' ? 'does not exist' : `cannot be read (${(error as Error).message})`}`,
      {
        value: remote.root,
        hint: `mount the remote, or fix remotes.${remote.id}.root; the daemon will not create it, so that an unmounted remote is never mistaken for an empty one`,
        cause: error,
      },
    );
  }
}

// XO writes encryption.json at the root of every remote it knows: {"algorithm":"none"} when it does not encrypt.
// One that cannot be read counts as encrypted, so its backups are still locked once their json has settled.
export async function isEncryptedRemote(root: string): Promise<boolean> {
  try {
    const { algorithm } = JSON.parse(await readFile(path.join(root, 'encryption.json'), 'utf8')) as {
      algorithm?: unknown;
    };
    return algorithm !== 'none';
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') return true;
  }
  return stat(path.join(root, 'metadata.json')).then(
    () => true,
    () => false,
  );
}
