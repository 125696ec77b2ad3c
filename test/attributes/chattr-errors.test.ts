import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ChattrAdapter } from '../../src/attributes/chattr.js';
import { AppError } from '../../src/errors.js';
import { tempFolder } from '../support/remote.js';

const originalPath = process.env.PATH;
afterEach(() => {
  process.env.PATH = originalPath;
});

// A stand-in chattr first on PATH prints real chattr messages, so error mapping is tested without breaking a filesystem.
async function fakeChattr(script: string): Promise<void> {
  const bin = await tempFolder('xo-immutable-fakebin-');
  await writeFile(path.join(bin, 'chattr'), `#!/bin/sh\n${script}\n`);
  await chmod(path.join(bin, 'chattr'), 0o755);
  process.env.PATH = `${bin}:${originalPath ?? ''}`;
}

describe('chattr error mapping', () => {
  it('pins a batch failure on its path, retries it alone, and reports the rest as locked', async () => {
    await fakeChattr(`
for last; do :; done
for p; do case "$p" in */bad) echo "chattr: Operation not supported while setting flags on $p" >&2; fail=1;; esac; done
exit \${fail:-0}`);
    const outcomes = await new ChattrAdapter().setImmutable(
      ['/r/good', '/r/bad', '/r/also-good'].map((p) => ({ path: p, recursive: false })),
      true,
    );
    expect(outcomes).toEqual([
      { path: '/r/good', status: 'ok' },
      {
        path: '/r/bad',
        status: 'failed',
        code: 'ENOTSUP',
        message: 'chattr: Operation not supported while setting flags on /r/bad',
      },
      { path: '/r/also-good', status: 'ok' },
    ]);
  });

  it('retries a path that fails once (XFS with SELinux) and reports it locked', async () => {
    const marker = path.join(await tempFolder(), 'tried');
    await fakeChattr(`
if [ ! -e ${marker} ]; then touch ${marker}; echo "chattr: Operation not permitted while setting flags on /r/fresh" >&2; exit 1; fi
exit 0`);
    expect(await new ChattrAdapter().setImmutable([{ path: '/r/fresh', recursive: false }], true)).toEqual([
      { path: '/r/fresh', status: 'ok' },
    ]);
  });

  it('says to install e2fsprogs when chattr is missing', async () => {
    process.env.PATH = await tempFolder('xo-immutable-emptybin-');
    await expect(new ChattrAdapter().setImmutable([{ path: '/r/x', recursive: false }], true)).rejects.toSatisfy(
      (error: unknown) =>
        error instanceof AppError && error.code === 'CHATTR_MISSING' && error.hint.includes('e2fsprogs'),
    );
  });
});
