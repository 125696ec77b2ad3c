import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rename, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AttributesIdentity } from '../../src/attributes/adapter.js';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import type { RemoteContext } from '../../src/context/remote-context.js';
import { entryName, lockedEntry, pendingEntry } from '../../src/index/entry.js';
import { IndexStore } from '../../src/index/store.js';
import { liftRemote } from '../../src/lift/apply.js';
import { unlockChunk } from '../../src/lift/chunk.js';
import { groupByPath } from '../../src/index/units.js';
import { emptyReport } from '../../src/lift/report.js';
import { utcDay } from '../../src/remote/datetime.js';
import type { Identity } from '../../src/remote/identity.js';
import { windowMsOf } from '../../src/remote/model.js';
import { DAY } from '../support/daemon.js';
import { isImmutable, tempRemote, type TestRemote } from '../support/remote.js';

// A real lift leaves the check of each unit to the flag helper (lift/candidate.ts): every guarantee Node's examine gave
// still holds, with the helper's refusal as the check, under openat2 and under the component walk.
const WINDOW = windowMsOf(7 * DAY);
const t = Date.UTC(2026, 9, 1, 6, 15, 0);
const now = t + WINDOW + 1000;
const attributes = new IoctlAdapter();
const walkBefore = process.env.XO_IMMUTABLE_FLAGS_WALK;
afterEach(() => {
  if (walkBefore === undefined) delete process.env.XO_IMMUTABLE_FLAGS_WALK;
  else process.env.XO_IMMUTABLE_FLAGS_WALK = walkBefore;
});

function contextOf(remote: TestRemote, realRoot = remote.root): RemoteContext {
  return {
    id: 'r',
    root: remote.root,
    realRoot,
    durationMs: 7 * DAY,
    windowMs: WINDOW,
    index: new IndexStore(remote.indexPath, 'r'),
    encrypted: false,
  };
}

// A remote as the daemon leaves it (its immutability.json locked, which lift asks for), with files under a VM folder.
async function remoteWith(files: readonly string[]): Promise<{ remote: TestRemote; paths: string[] }> {
  const remote = await tempRemote();
  const paths = files.map((f) => path.join(remote.root, 'xo-vm-backups', f));
  for (const file of paths) {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, 'vhd');
  }
  await writeFile(path.join(remote.root, 'immutability.json'), '{}');
  await lock(remote, [path.join(remote.root, 'immutability.json')]);
  return { remote, paths };
}

// Locked by the flag helper, as the daemon locks: the identity it answers is the one the entry records.
async function lock(remote: TestRemote, units: readonly string[], recursive = false): Promise<AttributesIdentity[]> {
  const within = { root: remote.root, realRoot: remote.root };
  const outcomes = await attributes.setImmutable(
    within,
    units.map((unit) => ({ path: unit, recursive, ...(recursive ? { layout: 'vhd-directory' as const } : {}) })),
    true,
  );
  return outcomes.map((o) => {
    if (o.status !== 'ok' || o.identity === undefined) throw new Error(`${o.path} not locked: ${JSON.stringify(o)}`);
    return o.identity;
  });
}

// The entry a lock at `t` completed for `unit`.
async function recordEntry(remote: TestRemote, unit: string, identity: Identity, recursive = false): Promise<void> {
  const request = { remote: 'r', path: unit, kind: 'vm' as const, recursive, backup: unit, backupInstant: t };
  await new IndexStore(remote.indexPath, 'r').write(lockedEntry(pendingEntry(request, t), identity, t));
}

function hasEntry(remote: TestRemote, unit: string): boolean {
  return existsSync(path.join(remote.indexPath, 'r', utcDay(t), entryName(unit)));
}

function withoutBirth(identity: Identity): Identity {
  const older = { ...identity };
  delete older.birthtimeNs;
  return older;
}

const lift = (remote: TestRemote, dryRun = false) =>
  liftRemote(contextOf(remote), attributes, { now, dryRun, all: false });

describe.each([
  ['openat2', ''],
  ['the component walk', '1'],
])('a real lift, the flag helper opening through %s', (_name, walk) => {
  const useWalk = () => {
    process.env.XO_IMMUTABLE_FLAGS_WALK = walk;
  };

  it('unlocks an expired unit whose identity, inode and birth time, is the one recorded, and forgets it', async () => {
    useWalk();
    const { remote, paths } = await remoteWith(['vm/vdis/j/v/a.vhd']);
    const [identity] = await lock(remote, paths);
    await recordEntry(remote, paths[0]!, identity!);
    const report = await lift(remote);
    expect(report.unlocked.map((u) => u.path)).toEqual(paths);
    expect(report.suspicious).toEqual([]);
    expect(isImmutable(paths[0]!)).toBe(false);
    expect(hasEntry(remote, paths[0]!)).toBe(false);
  });

  it('keeps locked a file with the inode recorded but another birth time (the inode handed out again)', async () => {
    useWalk();
    const { remote, paths } = await remoteWith(['vm/vdis/j/v/a.vhd']);
    const [identity] = await lock(remote, paths);
    const reborn = `${BigInt(identity!.birthtimeNs) - 1_000_000_000n}`;
    await recordEntry(remote, paths[0]!, { ...identity!, birthtimeNs: reborn });
    const report = await lift(remote);
    expect(report.unlocked).toEqual([]);
    expect(report.suspicious.map((s) => s.path)).toEqual(paths);
    expect(report.suspicious[0]?.reason).toMatch(/not the file checked \(inode\/birth .*, expected .*\)/);
    expect(isImmutable(paths[0]!)).toBe(true);
    expect(hasEntry(remote, paths[0]!)).toBe(true);
  });

  it('keeps locked, on its new path, a unit moved into an expiring unit path while its record says a later window', async () => {
    useWalk();
    const { remote, paths } = await remoteWith(['a/vdis/j/v/d.vhd', 'b/vdis/j/v/d.vhd']);
    const [expiring, moved] = paths as [string, string];
    const [expiringId, movedId] = await lock(remote, paths);
    await recordEntry(remote, expiring, expiringId!);
    // The unit of b is locked for a window that ends a day after the lift: recorded by its identity.
    const windows = contextOf(remote).index.windows;
    await windows.extend(movedId!, now + DAY, moved);
    await windows.commit();
    // Its VDI folder (never immutable) takes the place of a's, moved away.
    const aVdi = path.dirname(expiring);
    await rename(aVdi, `${aVdi}.away`);
    await rename(path.dirname(moved), aVdi);

    // The entry of a's path records a's unit: the file there now is not it.
    const swapped = await lift(remote);
    expect(swapped.suspicious.map((s) => s.path)).toEqual([expiring]);
    expect(swapped.suspicious[0]?.reason).toMatch(/not the file checked/);
    expect(isImmutable(expiring)).toBe(true);

    // Claimed there by its identity (as the daemon records a unit it finds locked at a new path): its record holds it.
    await recordEntry(remote, expiring, movedId!);
    const claimed = await lift(remote);
    expect(claimed.unlocked).toEqual([]);
    expect(claimed.suspicious.map((s) => s.path)).toEqual([expiring]);
    expect(claimed.suspicious[0]?.reason).toMatch(/keeps that window/);
    expect(isImmutable(expiring)).toBe(true);
    expect(hasEntry(remote, expiring)).toBe(true);
  });

  it('keeps the window of an entry without a birth time, whichever identity its record was written under', async () => {
    useWalk();
    const { remote, paths } = await remoteWith(['a/vdis/j/v/d.vhd', 'b/vdis/j/v/d.vhd']);
    const [full, redated] = paths as [string, string];
    const identities = await lock(remote, paths);
    const windows = contextOf(remote).index.windows;
    // An entry of an older release (no birth time): its record written later under the identity the helper read,
    // and a re-dating of such an entry (protect/locker.ts, redate), whose record says a birth time of "0".
    await windows.extend(identities[0]!, now + DAY, full);
    await windows.extend({ ...identities[1]!, birthtimeNs: '0' }, now + DAY, redated);
    await windows.commit();
    for (const [i, unit] of paths.entries()) await recordEntry(remote, unit, withoutBirth(identities[i]!));
    const report = await lift(remote);
    expect(report.unlocked).toEqual([]);
    expect(report.suspicious.map((s) => s.path).sort()).toEqual([...paths].sort());
    for (const s of report.suspicious) expect(s.reason).toMatch(/keeps that window/);
    expect(paths.map(isImmutable)).toEqual([true, true]);
  });

  it('reports a link on the way, a link or special file at the unit, as security warnings, and keeps their entries', async () => {
    useWalk();
    const { remote, paths } = await remoteWith(['vm/vdis/j/v/a.vhd', 'vm/vdis/j/w/b.vhd', 'vm/vdis/j/x/c.vhd']);
    const [throughLink, isLink, isFifo] = paths as [string, string, string];
    const identities = await lock(remote, paths);
    for (const [i, unit] of paths.entries()) await recordEntry(remote, unit, identities[i]!);
    // a's folder becomes a link to where it went; b a link to where it went; c a FIFO in its place.
    await rename(path.dirname(throughLink), `${path.dirname(throughLink)}.real`);
    await symlink(`${path.dirname(throughLink)}.real`, path.dirname(throughLink));
    await rename(path.dirname(isLink), `${path.dirname(isLink)}.real`);
    await mkdir(path.dirname(isLink));
    await symlink(path.join(`${path.dirname(isLink)}.real`, 'b.vhd'), isLink);
    await rename(path.dirname(isFifo), `${path.dirname(isFifo)}.real`);
    await mkdir(path.dirname(isFifo));
    execFileSync('mkfifo', [isFifo]);

    const report = await lift(remote);
    expect(report.unlocked).toEqual([]);
    expect(report.failed).toEqual([]);
    expect(report.vanished).toEqual([]);
    const reasons = new Map(report.suspicious.map((s) => [s.path, s.reason]));
    expect([...reasons.keys()].sort()).toEqual([...paths].sort());
    expect(reasons.get(throughLink)).toMatch(/is not a real folder \(a symbolic link\?\): not followed/);
    expect(reasons.get(isLink)).toMatch(/is a symbolic link: not followed/);
    expect(reasons.get(isFifo)).toMatch(/is not a regular file or directory/);
    for (const unit of paths) expect(hasEntry(remote, unit), unit).toBe(true);
    expect(isImmutable(path.join(`${path.dirname(throughLink)}.real`, 'a.vhd'))).toBe(true);
  });

  it('keeps the entries of a unit whose folder was renamed away or made a file, and forgets one gone', async () => {
    useWalk();
    const { remote, paths } = await remoteWith(['vm/vdis/j/v/a.vhd', 'vm/vdis/j/w/b.vhd', 'vm/vdis/j/x/c.vhd']);
    const [renamed, madeFile, gone] = paths as [string, string, string];
    const identities = await lock(remote, paths);
    for (const [i, unit] of paths.entries()) await recordEntry(remote, unit, identities[i]!);
    await rename(path.dirname(renamed), `${path.dirname(renamed)}.away`);
    await rename(path.dirname(madeFile), `${path.dirname(madeFile)}.away`);
    await writeFile(path.dirname(madeFile), 'a file where the folder was');
    execFileSync('chattr', ['-i', gone]);
    execFileSync('rm', [gone]);

    const report = await lift(remote);
    expect(report.suspicious).toEqual([]);
    expect(report.failed.map((f) => f.path).sort()).toEqual([renamed, madeFile].sort());
    for (const f of report.failed) expect(f.message).toMatch(/^its folder is gone \(renamed\?\): .*; entries kept/);
    expect(report.vanished.map((u) => u.path)).toEqual([gone]);
    expect([hasEntry(remote, renamed), hasEntry(remote, madeFile), hasEntry(remote, gone)]).toEqual([
      true,
      true,
      false,
    ]);
  });

  it('unlocks whole, held to its layout, a directory unit whose entry says file (older releases)', async () => {
    useWalk();
    const { remote } = await remoteWith([]);
    const vdi = path.join(remote.root, 'xo-vm-backups', 'vm', 'vdis', 'j', 'v');
    const [clean, foreign] = [path.join(vdi, 'a.vhd'), path.join(vdi, 'b.vhd')];
    for (const dir of [clean, foreign]) {
      await mkdir(path.join(dir, 'blocks', '0'), { recursive: true });
      for (const part of ['header', 'footer', 'bat', 'blocks/0/0']) await writeFile(path.join(dir, part), part);
    }
    const identities = await lock(remote, [clean, foreign], true);
    // Moved in after the lock, with the folder unlocked a moment (as a lock before the layout check allowed).
    execFileSync('chattr', ['-i', foreign]);
    await writeFile(path.join(foreign, 'planted'), 'x');
    execFileSync('chattr', ['+i', foreign, path.join(foreign, 'planted')]);
    await recordEntry(remote, clean, identities[0]!, false);
    await recordEntry(remote, foreign, identities[1]!, false);

    const report = await lift(remote);
    expect(report.unlocked.map((u) => u.path)).toEqual([clean]);
    for (const file of [clean, path.join(clean, 'header'), path.join(clean, 'blocks', '0', '0')])
      expect(isImmutable(file), file).toBe(false);
    expect(report.suspicious.map((s) => s.path)).toEqual([foreign]);
    expect(report.suspicious[0]?.reason).toMatch(/planted is not part of a VHD directory/);
    expect(isImmutable(path.join(foreign, 'header'))).toBe(true);
  });

  it('touches nothing and forgets nothing when the root no longer resolves where it did at start', async () => {
    useWalk();
    const { remote, paths } = await remoteWith(['vm/vdis/j/v/a.vhd']);
    const [identity] = await lock(remote, paths);
    await recordEntry(remote, paths[0]!, identity!);
    const context = contextOf(remote, `${remote.root}.elsewhere`);
    const { units } = groupByPath(await context.index.readDay(utcDay(t)));
    const report = emptyReport('r', false);
    const lifted = await unlockChunk(
      context,
      attributes,
      units,
      { now, all: false, dryRun: false },
      report,
      async () => {},
    );
    expect(lifted).toEqual({ unlocked: [], gone: [] });
    expect(report.suspicious.map((s) => s.path)).toEqual(paths);
    expect(report.suspicious[0]?.reason).toMatch(/resolves to .*, not .* as at start/);
    expect(isImmutable(paths[0]!)).toBe(true);
  });
});

describe('a dry run', () => {
  it('examines each unit itself, the flag helper not asked, and says what a real lift would refuse', async () => {
    const { remote, paths } = await remoteWith(['vm/vdis/j/v/a.vhd', 'vm/vdis/j/w/b.vhd']);
    const [kept, reborn] = paths as [string, string];
    const identities = await lock(remote, paths);
    await recordEntry(remote, kept, identities[0]!);
    await recordEntry(remote, reborn, { ...identities[1]!, birthtimeNs: '1' });
    const report = await lift(remote, true);
    expect(report.unlocked.map((u) => u.path)).toEqual([kept]);
    expect(report.suspicious.map((s) => s.path)).toEqual([reborn]);
    expect(report.suspicious[0]?.reason).toMatch(/not the file that was locked/);
    expect(paths.map(isImmutable)).toEqual([true, true]);
    expect(paths.map((p) => hasEntry(remote, p))).toEqual([true, true]);
  });
});
