import { randomBytes } from 'node:crypto';
import { appendFile, lstat, readdir, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AppError, errnoCode } from '../errors.js';
import type { AttributesAdapter, Within } from './adapter.js';
import { readFilesystemType } from './filesystem.js';

const PROBE_PREFIX = '.xo-immutable-backups-probe-';

// A crash between locking a probe and removing it leaves a locked dot file at the root: the next start removes it.
async function removeStaleProbes(remote: Within, attributes: AttributesAdapter): Promise<void> {
  const { root } = remote;
  const stale = (await readdir(root).catch(() => []))
    .filter((name) => name.startsWith(PROBE_PREFIX))
    .map((name) => path.join(root, name));
  if (stale.length === 0) return;
  await attributes.setImmutable(
    remote,
    stale.map((p) => ({ path: p, recursive: false })),
    false,
  );
  for (const probe of stale) await unlink(probe).catch(() => undefined);
}

type Failure = (what: string, cause?: unknown) => AppError;

// Proves on the remote itself that +i holds: a probe file is locked, a write and an unlink must fail with EPERM,
// then it is cleaned up. The probe starts with a dot, which XO treats as its own temporary and never reads.
export async function selfTestRemote(remote: Within, attributes: AttributesAdapter): Promise<void> {
  const { root } = remote;
  await removeStaleProbes(remote, attributes);
  const fail = failureOn(root, readFilesystemType(remote.realRoot));
  const probe = path.join(root, `${PROBE_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await writeFile(probe, 'probe\n', { flag: 'wx', mode: 0o600 });
  } catch (error) {
    throw fail(`cannot create ${probe}: ${(error as Error).message}`, error);
  }
  try {
    await proveLockHolds(remote, probe, attributes, fail);
  } finally {
    await attributes.setImmutable(remote, [{ path: probe, recursive: false }], false).catch(() => undefined);
    await unlink(probe).catch(() => undefined);
  }
  // A probe that survived its cleanup would be a leftover the admin has to remove by hand: say so.
  const stillThere = await lstat(probe).then(
    () => true,
    () => false,
  );
  if (stillThere) throw fail(`the probe ${probe} could not be removed; remove it with chattr -i and rm`);
}

function failureOn(root: string, fsType: string): Failure {
  return (what, cause) =>
    new AppError('SELF_TEST_FAILED', `Self-test on ${root} (filesystem ${fsType}) failed: ${what}`, {
      value: { root, fsType },
      hint:
        ['nfs', 'nfs4', 'cifs', 'smb3', 'fuse'].includes(fsType) || fsType.startsWith('fuse.')
          ? `${fsType} does not keep the immutable attribute; ` +
            'run the daemon on the server that holds the disks (ext4, xfs or btrfs)'
          : 'the remote must be on a local filesystem that supports the immutable flag (ext4, xfs, btrfs) ' +
            'and the daemon must run as root',
      cause,
    });
}

// Locks the probe, then a write and an unlink of it must both fail with EPERM.
async function proveLockHolds(
  remote: Within,
  probe: string,
  attributes: AttributesAdapter,
  fail: Failure,
): Promise<void> {
  const [locked] = await attributes.setImmutable(remote, [{ path: probe, recursive: false }], true);
  if (locked?.status !== 'ok') {
    const detail = locked?.status === 'failed' ? locked.message : 'the probe vanished';
    throw fail(`+i did not take: ${detail}`);
  }
  for (const [what, attempt] of [
    ['a write', () => appendFile(probe, 'x')],
    ['an unlink', () => unlink(probe)],
  ] as const) {
    try {
      await attempt();
      throw fail(`${what} of the locked probe succeeded`);
    } catch (error) {
      if (error instanceof AppError) throw error;
      if (errnoCode(error) !== 'EPERM')
        throw fail(
          `${what} of the locked probe failed with ${errnoCode(error) ?? 'an unknown error'} instead of EPERM`,
          error,
        );
    }
  }
}
