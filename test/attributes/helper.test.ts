import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, rename, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { AppError } from '../../src/errors.js';
import { canMake, mountFilesystem } from '../support/filesystems.js';
import { isImmutable, stopBeforeCleanup, tempFolder, waitFor } from '../support/remote.js';

// The state letter of a process (R, S, T stopped, Z dead and not reaped yet), or undefined when there is none.
function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

// An adapter whose helpers are ended after the test, whatever happened.
function adapter(options: ConstructorParameters<typeof IoctlAdapter>[0] = {}): IoctlAdapter {
  const made = new IoctlAdapter(options);
  stopBeforeCleanup(async () => {
    for (const pid of made.helperPids) if (processState(pid) === 'T') process.kill(pid, 'SIGKILL');
    await made.close();
  });
  return made;
}

async function files(root: string, names: readonly string[]): Promise<string[]> {
  const made = names.map((name) => path.join(root, name));
  for (const file of made) await writeFile(file, 'x');
  return made;
}

const targets = (paths: readonly string[]) => paths.map((p) => ({ path: p, recursive: false }));

// The helper stopped by itself after its first answer (XO_IMMUTABLE_FLAGS_STOP=1): it is in the middle of a request.
async function stoppedHelper(flags: IoctlAdapter): Promise<number> {
  let stopped: number | undefined;
  await waitFor(() => {
    stopped = flags.helperPids.find((pid) => processState(pid) === 'T');
    return stopped !== undefined;
  }, 'the helper to stop in the middle of its request');
  return stopped!;
}

const stop = process.env.XO_IMMUTABLE_FLAGS_STOP;
const originalPath = process.env.PATH;
afterEach(() => {
  if (stop === undefined) delete process.env.XO_IMMUTABLE_FLAGS_STOP;
  else process.env.XO_IMMUTABLE_FLAGS_STOP = stop;
  process.env.PATH = originalPath;
});

describe('the long-lived flag helper', () => {
  it('serves batch after batch from one process', async () => {
    const root = await tempFolder();
    const within = { root, realRoot: root };
    const [a, b] = await files(root, ['a', 'b']);
    const flags = adapter();
    expect(await flags.setImmutable(within, targets([a!]), true)).toMatchObject([{ status: 'ok' }]);
    const [pid] = flags.helperPids;
    expect(await flags.setImmutable(within, targets([b!]), true)).toMatchObject([{ status: 'ok' }]);
    expect([...(await flags.isImmutable(within, [a!, b!])).values()]).toEqual([true, true]);
    expect(flags.helperPids).toEqual([pid]);
    expect(await flags.setImmutable(within, targets([a!, b!]), false)).toMatchObject([
      { status: 'ok' },
      { status: 'ok' },
    ]);
    expect([isImmutable(a!), isImmutable(b!)]).toEqual([false, false]);
  });

  it('killed in the middle of a batch: the rest is done by a new helper, and the next batch works', async () => {
    const root = await tempFolder();
    const within = { root, realRoot: root };
    const batch = await files(
      root,
      Array.from({ length: 8 }, (_, i) => `a${i}.json`),
    );
    const next = await files(root, ['b.json']);
    process.env.XO_IMMUTABLE_FLAGS_STOP = '1';
    const flags = adapter();
    const locking = flags.setImmutable(within, targets(batch), true);
    const killed = await stoppedHelper(flags);
    delete process.env.XO_IMMUTABLE_FLAGS_STOP;
    process.kill(killed, 'SIGKILL');

    const outcomes = await locking;
    expect(outcomes.map((o) => o.status)).toEqual(batch.map(() => 'ok'));
    for (const file of batch) expect(isImmutable(file), file).toBe(true);
    expect(flags.helperPids).not.toContain(killed);
    expect(await flags.setImmutable(within, targets(next), true)).toMatchObject([{ status: 'ok' }]);
    expect(isImmutable(next[0]!)).toBe(true);
    expect(await flags.setImmutable(within, targets([...batch, ...next]), false)).toSatisfy(
      (all: { status: string }[]) => all.every((o) => o.status === 'ok'),
    );
  });

  it('stuck: killed once silent past its bound; what it answered stands, the rest fails, unlocked', async () => {
    const root = await tempFolder();
    const within = { root, realRoot: root };
    const batch = await files(root, ['a.json', 'b.json', 'c.json']);
    process.env.XO_IMMUTABLE_FLAGS_STOP = '1';
    // The helper stops itself and is never let go on: only the bound can end the call.
    const flags = adapter({ stallMs: 3000 });
    const locking = flags.setImmutable(within, targets(batch), true);
    const stuck = await stoppedHelper(flags);

    const outcomes = await locking;
    expect(outcomes.map((o) => [o.status, o.status === 'failed' ? o.code : ''])).toEqual([
      ['ok', ''],
      ['failed', 'ETIMEDOUT'],
      ['failed', 'ETIMEDOUT'],
    ]);
    expect(batch.map((file) => isImmutable(file))).toEqual([true, false, false]);
    await waitFor(() => [undefined, 'Z'].includes(processState(stuck)), 'the stuck helper to be killed');
    delete process.env.XO_IMMUTABLE_FLAGS_STOP;
    expect(await flags.setImmutable(within, targets(batch.slice(1)), true)).toMatchObject([
      { status: 'ok' },
      { status: 'ok' },
    ]);
    expect(batch.map((file) => isImmutable(file))).toEqual([true, true, true]);
  });

  it('acts on the root its path names now, never on one it held: renamed away and replaced, or made a link', async () => {
    const base = await tempFolder();
    const root = path.join(base, 'remote');
    await mkdir(root);
    const within = { root, realRoot: root };
    const [unit] = await files(root, ['a.json']);
    const flags = adapter();
    expect(await flags.setImmutable(within, targets([unit!]), true)).toMatchObject([{ status: 'ok' }]);
    const [pid] = flags.helperPids;

    // The mount point's folder renamed away (an attacker who can write above the remote, or an admin moving it) and
    // another put in its place: the locked file is in the old one, an unlocked one at the same path in the new one.
    const old = path.join(base, 'old');
    await rename(root, old);
    await mkdir(root);
    await files(root, ['a.json']);
    expect((await flags.isImmutable(within, [unit!])).get(unit!)).toBe(false);
    const [relocked] = await flags.setImmutable(within, targets([unit!]), true);
    expect(relocked?.status === 'ok' && relocked.identity?.ino).toBe(String((await stat(unit!)).ino));
    expect(isImmutable(unit!)).toBe(true);

    // Then a link to the old one in its place: nothing is acted on through it.
    await rename(root, path.join(base, 'replaced'));
    await symlink(old, root);
    expect(await flags.setImmutable(within, targets([unit!]), false)).toMatchObject([
      { status: 'failed', code: 'ECONFINE' },
    ]);
    expect((await flags.isImmutable(within, [unit!])).get(unit!)).toBeUndefined();
    expect(isImmutable(path.join(old, 'a.json'))).toBe(true);
    // All along one helper, started once.
    expect(flags.helperPids).toEqual([pid]);
  });

  it("fails the call on a warning sent with the answer, when the tests turn perl's warnings on", async () => {
    const root = await tempFolder();
    const [file] = await files(root, ['a.json']);
    // A perl that answers like the helper, with a warning first (as its __WARN__ handler sends one).
    const bin = await tempFolder('xo-immutable-fakebin-');
    await writeFile(
      path.join(bin, 'perl'),
      "#!/bin/sh\nprintf 'warn\\tUse of uninitialized value in pattern match at line 9.\\n0\\tok\\t-\\t\\nend\\t1\\n'\ncat >/dev/null\n",
      { mode: 0o755 },
    );
    process.env.PATH = `${bin}:${originalPath ?? '/usr/bin:/bin'}`;
    const flags = adapter();
    await expect(flags.setImmutable({ root, realRoot: root }, targets([file!]), true)).rejects.toSatisfy(
      (error: unknown) =>
        error instanceof AppError && error.code === 'FLAG_HELPER_FAILED' && error.message.includes('uninitialized'),
    );
  });

  it.runIf(canMake('tmpfs'))('keeps no mount busy between batches: the remote unmounts and mounts again', async () => {
    const root = await mountFilesystem('tmpfs');
    const within = { root, realRoot: root };
    const [first] = await files(root, ['a.json']);
    const flags = adapter();
    expect(await flags.setImmutable(within, targets([first!]), true)).toMatchObject([{ status: 'ok' }]);
    expect(await flags.setImmutable(within, targets([first!]), false)).toMatchObject([{ status: 'ok' }]);
    const [pid] = flags.helperPids;

    execFileSync('umount', [root]);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', root]);
    const [second] = await files(root, ['b.json']);
    expect(await flags.setImmutable(within, targets([second!]), true)).toMatchObject([{ status: 'ok' }]);
    expect(isImmutable(second!)).toBe(true);
    expect(flags.helperPids).toEqual([pid]);
  });
});
