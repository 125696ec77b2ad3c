import { execFileSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { stopBeforeCleanup, tempFolder } from './remote.js';

export type FilesystemType = 'ext4' | 'xfs' | 'btrfs' | 'tmpfs' | 'ramfs';

const MKFS: Partial<Record<FilesystemType, string[]>> = {
  ext4: ['mkfs.ext4', '-q', '-F'],
  xfs: ['mkfs.xfs', '-q', '-f'],
  btrfs: ['mkfs.btrfs', '-q', '-f'],
};

// Whether this machine can make that filesystem (mkfs present). CI installs them all; a run without one fails there.
export function canMake(type: FilesystemType): boolean {
  const mkfs = MKFS[type];
  if (mkfs === undefined) return true;
  try {
    execFileSync('sh', ['-c', `command -v ${mkfs[0]}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// A fresh filesystem of the given type, loop-mounted (or tmpfs/ramfs) inside a temp folder. Its cleanup clears +i,
// unmounts, and only then lets the temp folder be removed.
export async function mountFilesystem(type: FilesystemType): Promise<string> {
  const base = await tempFolder(`xo-immutable-${type}-`);
  const mountPoint = path.join(base, 'mnt');
  await mkdir(mountPoint);
  const mkfs = MKFS[type];
  if (mkfs === undefined) {
    execFileSync('mount', ['-t', type, '-o', type === 'tmpfs' ? 'size=64m' : 'mode=0755', type, mountPoint]);
  } else {
    const image = path.join(base, 'image');
    execFileSync('truncate', ['-s', type === 'xfs' ? '320M' : '128M', image]);
    execFileSync(mkfs[0]!, [...mkfs.slice(1), image], { stdio: 'ignore' });
    execFileSync('mount', ['-o', 'loop', image, mountPoint]);
  }
  stopBeforeCleanup(async () => {
    try {
      execFileSync('chattr', ['-R', '-i', mountPoint], { stdio: 'ignore' });
    } catch {
      // ramfs has no flags to clear.
    }
    execFileSync('umount', [mountPoint]);
  });
  return mountPoint;
}
