import { open, readdir, rename, rmdir, truncate, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface AttackOutcome {
  files: number;
  // files that an overwrite, a truncation, a rename over or an unlink changed or removed
  destroyed: number;
  folders: number;
  foldersRemoved: number;
}

const RANSOM = Buffer.from('encrypted by ransomware\n');

// Someone holding XO's credentials, without chattr: every file of the remote is overwritten in place, truncated,
// replaced by a rename over it and unlinked; every folder is removed once emptied. Each operation is tried and
// whether it went through is counted. It runs as root, a stronger attacker than XO's user: only +i stops it.
// Moving a locked unit's folder away is left out: the unit survives it, and moving it back undoes it.
export async function attackRemote(root: string): Promise<AttackOutcome> {
  const outcome: AttackOutcome = { files: 0, destroyed: 0, folders: 0, foldersRemoved: 0 };
  let decoys = 0;
  const succeeded = (operation: Promise<unknown>): Promise<boolean> =>
    operation.then(
      () => true,
      () => false,
    );

  const attackFile = async (file: string): Promise<boolean> => {
    const overwritten = await succeeded(
      open(file, 'r+').then(async (handle) => {
        try {
          await handle.write(RANSOM, 0, RANSOM.length, 0);
        } finally {
          await handle.close();
        }
      }),
    );
    const truncated = await succeeded(truncate(file, 0));
    // The decoy sits at the root, which XO writes in: creating it never depends on the target's folder.
    const decoy = path.join(root, `.xo-drill-decoy-${decoys++}`);
    await writeFile(decoy, RANSOM);
    const replaced = await succeeded(rename(decoy, file));
    if (!replaced) await unlink(decoy);
    const unlinked = await succeeded(unlink(file));
    return overwritten || truncated || replaced || unlinked;
  };

  const walk = async (folder: string): Promise<void> => {
    for (const entry of await readdir(folder, { withFileTypes: true })) {
      const target = path.join(folder, entry.name);
      if (entry.isDirectory()) {
        outcome.folders++;
        await walk(target);
        if (await succeeded(rmdir(target))) outcome.foldersRemoved++;
        continue;
      }
      outcome.files++;
      if (await attackFile(target)) outcome.destroyed++;
    }
  };
  await walk(root);
  return outcome;
}
