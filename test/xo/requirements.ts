import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

// What the XO compatibility suite needs beyond the repo's own packages, or undefined when all is there: XO's packages
// in test/xo/node_modules (npm test's pretest installs them), and libfuse.so.2 for fuse-native, which XO's backups
// package loads at import.
export function missingForXo(): string | undefined {
  if (!existsSync(path.join(here, 'node_modules', '@xen-orchestra', 'backups', 'package.json'))) {
    return "XO's packages are not installed in test/xo: run npm test (its pretest installs them) or npm ci --prefix test/xo";
  }
  if (!hasLibfuse2()) return 'libfuse.so.2 not found: install the Debian package libfuse2';
  return undefined;
}

function hasLibfuse2(): boolean {
  try {
    const cache = execFileSync('sh', ['-c', 'ldconfig -p 2>/dev/null || /sbin/ldconfig -p'], { encoding: 'utf8' });
    return cache.includes('libfuse.so.2 ');
  } catch {
    return false;
  }
}
