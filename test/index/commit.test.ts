import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { commitGroup } from '../../src/index/commit.js';
import { mountFilesystem } from '../support/filesystems.js';

// Files written into a new folder of a fresh ext4 image, committed as one group, then a power cut: the filesystem shut
// down without flushing its journal (FS_IOC_SHUTDOWN, as xfstests' godown does) and mounted again.
async function survivors(count: number, commit: boolean): Promise<number> {
  const mountPoint = await mountFilesystem('ext4');
  const folder = path.join(mountPoint, 'bucket');
  await mkdir(folder);
  const files = Array.from({ length: count }, (_, i) => path.join(folder, `entry-${i}`));
  for (const file of files) await writeFile(file, `${path.basename(file)}\n`);
  if (commit) await commitGroup(mountPoint, files, [folder]);
  execFileSync('xfs_io', ['-x', '-c', 'shutdown', mountPoint]);
  execFileSync('umount', [mountPoint]);
  execFileSync('mount', ['-o', 'loop', path.join(mountPoint, '..', 'image'), mountPoint]);
  let kept = 0;
  for (const file of files) if ((await readFile(file, 'utf8').catch(() => '')) === `${path.basename(file)}\n`) kept++;
  return kept;
}

describe('group commit', () => {
  // 3 files take an fdatasync each, 300 one syncfs of the filesystem (unless the machine holds much unwritten data).
  it.each([3, 300])('keeps all of a group of %i files through a power cut', async (count) => {
    expect(await survivors(count, true)).toBe(count);
  });

  // Not all lost: the kernel may write some back on its own meanwhile on a busy machine.
  it('is what keeps them: uncommitted, the same files are lost', async () => {
    expect(await survivors(300, false)).toBeLessThan(300);
  });
});
