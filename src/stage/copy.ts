import { closeSync, constants, fchownSync, fstatSync, openSync, type Stats } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { AppError, errnoCode } from '../errors.js';
import { readFully, type HeldTree } from '../remote/held.js';
import { openSource, procPath, type TargetTree } from './source.js';

export type CopyMethod = 'reflink' | 'copy';

// What the kernel says when a reflink is not possible here: another filesystem, or one without shared extents.
const NO_REFLINK = new Set(['EOPNOTSUPP', 'ENOTSUP', 'EXDEV', 'EINVAL', 'ENOTTY', 'ENOSYS', 'EBADF']);
const CHUNK = 4 * 1024 * 1024;

// One file of the remote copied into the same place of the target, then read back and compared byte for byte with
// the source, through the descriptor opened on the remote (never a path an attacker could swap). A reflink (FICLONE:
// shared blocks, no space) where the filesystem can, a plain copy elsewhere. Contents only: the copy never carries the
// source's attributes (+i), and takes its owner and mode. `onBytes`: bytes compared, for progress.
export async function copyVerified(
  source: HeldTree,
  target: TargetTree,
  relative: string,
  onBytes: (bytes: number) => void,
): Promise<CopyMethod> {
  const { fd, stats } = openSource(source, relative);
  try {
    const from = procPath(fd);
    const to = target.pathIn(relative);
    let method: CopyMethod = 'reflink';
    try {
      await copyFile(from, to, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE_FORCE);
    } catch (error) {
      if (!NO_REFLINK.has(errnoCode(error) ?? '')) throw error;
      method = 'copy';
      await copyFile(from, to, constants.COPYFILE_EXCL);
    }
    const copy = openSync(to, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      fchownSync(copy, stats.uid, stats.gid);
      compare(fd, copy, stats, relative, onBytes);
    } finally {
      closeSync(copy);
    }
    const after = fstatSync(fd);
    if (after.size !== stats.size || after.mtimeMs !== stats.mtimeMs)
      throw copyFailed(relative, 'the file changed on the remote while it was copied');
    return method;
  } finally {
    closeSync(fd);
  }
}

function compare(source: number, copy: number, stats: Stats, relative: string, onBytes: (bytes: number) => void): void {
  if (fstatSync(copy).size !== stats.size) throw copyFailed(relative, 'the copy has a different size');
  const a = Buffer.allocUnsafe(CHUNK);
  const b = Buffer.allocUnsafe(CHUNK);
  for (let position = 0; ;) {
    const read = readFully(source, a, position);
    const readBack = readFully(copy, b, position);
    if (read !== readBack || !a.subarray(0, read).equals(b.subarray(0, readBack)))
      throw copyFailed(relative, `the copy reads back different bytes from offset ${position}`);
    if (read === 0) return;
    position += read;
    onBytes(read);
  }
}

function copyFailed(relative: string, why: string): AppError {
  return new AppError('STAGE_COPY_FAILED', `${relative}: ${why}`, {
    value: relative,
    hint: 'the target holds a partial copy: remove it, check the disks (dmesg), and stage again',
  });
}
