import type { BigIntStats } from 'node:fs';

// What a file is, not where: a unit found again under the same path is the same unit only if this matches.
export interface Identity {
  dev: string;
  ino: string;
  size: string;
  mtimeNs: string;
  ctimeNs: string;
  // Tells a new file from an old one when the filesystem hands the freed inode number straight back ("0": not kept).
  birthtimeNs?: string;
}

// An identity as Node's lstat/fstat report it (bigint, so nanoseconds are exact); the flag helper's statx matches it.
export function identityOf(stats: BigIntStats): Required<Identity> {
  return {
    dev: stats.dev.toString(),
    ino: stats.ino.toString(),
    size: stats.size.toString(),
    mtimeNs: stats.mtimeNs.toString(),
    ctimeNs: stats.ctimeNs.toString(),
    birthtimeNs: stats.birthtimeNs.toString(),
  };
}
