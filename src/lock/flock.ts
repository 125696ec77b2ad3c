import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { AppError } from '../errors.js';

// Shipped in the package (package.json "files"); the same path from src/ and from dist/.
const HELPER = fileURLToPath(new URL('../../libexec/xo-immutable-lock.pl', import.meta.url));
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

// The one place that takes the instance lock: node has no flock(2), so a tiny perl helper takes it on our own open
// descriptor (passed as its fd 3) and exits. The lock belongs to the open file description, not to the helper: it
// stays held while this process keeps `fd` open and the kernel drops it when this process exits or crashes.
export async function flockExclusive(fd: number, file: string): Promise<'locked' | 'busy'> {
  const result = await execa('perl', [HELPER], {
    env: { LC_ALL: 'C', LANG: 'C', PATH: process.env.PATH ?? DEFAULT_PATH },
    extendEnv: false,
    reject: false,
    // execa's types list descriptors 3 to 9 only; at run time any open descriptor is passed to spawn as it is.
    stdio: ['ignore', 'ignore', 'pipe', fd as 3],
  });
  if (result.exitCode === 0) return 'locked';
  if (result.exitCode === 1) return 'busy';
  const missing = result.code === 'ENOENT';
  throw new AppError(missing ? 'PERL_MISSING' : 'INDEX_UNUSABLE', `Cannot lock ${file}: ${describe(result)}`, {
    value: file,
    hint: missing
      ? 'install perl (apt-get install perl-base), which takes the lock and runs the flag helper'
      : 'put indexPath on a local filesystem, which supports flock(2) (docs/operations.md, "One daemon per index")',
    cause: result,
  });
}

function describe(result: { stderr?: unknown; shortMessage?: string }): string {
  const stderr = typeof result.stderr === 'string' ? result.stderr.trim() : '';
  return stderr !== '' ? stderr : (result.shortMessage ?? 'the lock helper failed');
}
