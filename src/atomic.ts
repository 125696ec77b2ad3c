import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';

// Writes a file so that readers see the old content or the new, never half of it: a temporary file in the same
// folder, renamed over the target. The temporary is created exclusively ('wx': a link planted at its name is never
// followed) and its mode set on the open descriptor, so neither the umask nor a swapped path can change what is set.
export async function writeFileAtomic(target: string, content: string, mode: number): Promise<void> {
  const temporary = `${target}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const handle = await open(temporary, 'wx', mode);
    try {
      await handle.writeFile(content);
      await handle.chmod(mode);
    } finally {
      await handle.close();
    }
    await rename(temporary, target);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
}
