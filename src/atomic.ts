import { randomBytes } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { errnoCode } from './errors.js';

// Writes a file so that readers see the old content or the new, never half of it: a temporary file in the same
// folder, renamed over the target. The temporary is created exclusively ('wx': a link planted at its name is never
// followed) and its mode set on the open descriptor, so neither the umask nor a swapped path can change what is set.
// `durable`: the content and the rename reach the disk before this returns (state a power loss must not take back).
export async function writeFileAtomic(
  target: string,
  content: string,
  mode: number,
  { durable = false }: { durable?: boolean } = {},
): Promise<void> {
  const temporary = `${target}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const handle = await open(temporary, 'wx', mode);
    try {
      await handle.writeFile(content);
      await handle.chmod(mode);
      if (durable) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, target);
    if (durable) await syncFolder(path.dirname(target));
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
}

// A folder's entries (a file created, renamed or removed in it) reach the disk.
export async function syncFolder(folder: string): Promise<void> {
  const handle = await open(folder, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

// Unlinks a file; false when it was not there.
export function unlinkIfPresent(file: string): boolean {
  try {
    unlinkSync(file);
    return true;
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return false;
    throw error;
  }
}
