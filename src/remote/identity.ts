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
