import { readFileSync } from 'node:fs';

interface Mount {
  mountPoint: string;
  fsType: string;
}

// mountinfo escapes spaces and other bytes in mount points as \ooo.
function unescapeMountPath(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

export function parseMountinfo(text: string): Mount[] {
  const mounts: Mount[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const separator = fields.indexOf('-');
    const mountPoint = fields[4];
    const fsType = fields[separator + 1];
    if (separator < 0 || mountPoint === undefined || fsType === undefined) continue;
    mounts.push({ mountPoint: unescapeMountPath(mountPoint), fsType });
  }
  return mounts;
}

// The filesystem type of the mount holding `realPath` (the longest prefixing mount point; the last mounted wins).
export function filesystemTypeOf(realPath: string, mounts: readonly Mount[]): string | undefined {
  let best: Mount | undefined;
  for (const mount of mounts) {
    const prefix = mount.mountPoint === '/' ? '/' : `${mount.mountPoint}/`;
    if (realPath !== mount.mountPoint && !realPath.startsWith(prefix)) continue;
    if (best === undefined || mount.mountPoint.length >= best.mountPoint.length) best = mount;
  }
  return best?.fsType;
}

export function readFilesystemType(realPath: string): string {
  try {
    return filesystemTypeOf(realPath, parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'))) ?? 'unknown';
  } catch {
    return 'unknown';
  }
}
