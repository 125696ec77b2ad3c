import { spawn, spawnSync } from 'node:child_process';
import { hash } from 'node:crypto';
import { mkdir, readdir, readFile, rmdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UnitWindows } from '../../src/index/windows.js';
import { tempFolder } from '../support/remote.js';

const identity = { dev: '1', ino: '42', size: '7', mtimeNs: '1', ctimeNs: '2', birthtimeNs: '3' };

// A record's file name in .windows/<remote>/, as every release wrote it.
function nameOf(unit: typeof identity): string {
  return hash('sha256', `${unit.ino}:${unit.birthtimeNs}`, 'hex');
}

describe('UnitWindows', () => {
  it("records a json's arrival once, in the one record of its window, and keeps the first", async () => {
    const windows = new UnitWindows(await tempFolder(), 'r');
    await windows.extend(identity, 1_000, '/r/a.json', 100);
    // A later lock of the same json (moved, claimed again) extends its window, never its arrival.
    await windows.extend(identity, 2_000, '/r/b.json', 900);
    expect(await windows.read(identity)).toEqual({ until: 2_000, path: '/r/b.json', arrived: 100 });
    // An arrival added to a record written without one (an older release) keeps the later window and its path.
    const other = { ...identity, ino: '43' };
    await windows.extend(other, 5_000, '/r/c.vhd');
    await windows.extend(other, 1_000, '/r/d.json', 300);
    expect(await windows.read(other)).toEqual({ until: 5_000, path: '/r/c.vhd', arrived: 300 });
    // One record a unit, written at the commit, no temporary file left.
    await windows.commit();
    expect(await readdir(windows.folder)).toHaveLength(2);
    expect(await new UnitWindows(path.dirname(path.dirname(windows.folder)), 'r').read(other)).toEqual({
      until: 5_000,
      path: '/r/c.vhd',
      arrived: 300,
    });
  });

  it('reads the records on disk when it opens, and those it commits or forgets after', async () => {
    const indexPath = await tempFolder();
    const folder = path.join(indexPath, '.windows', 'r');
    const older = { ...identity, ino: '60' };
    const damaged = { ...identity, ino: '61' };
    const fresh = { ...identity, ino: '62' };
    // Left by an older release (no version) and by a crash (a half-written record).
    await mkdir(folder, { recursive: true });
    await writeFile(path.join(folder, nameOf(older)), JSON.stringify({ until: 7_000, path: '/r/old.vhd' }));
    await writeFile(path.join(folder, nameOf(damaged)), '{"until":');
    const windows = new UnitWindows(indexPath, 'r');
    expect(await windows.read(older)).toEqual({ until: 7_000, path: '/r/old.vhd' });
    expect((await windows.read(damaged))?.until).toBe(Number.POSITIVE_INFINITY);
    expect(await windows.read(fresh)).toBeUndefined();

    // Listed already: what it commits afterwards is read from the disk, by it and by another process.
    await windows.extend(fresh, 3_000, '/r/new.json', 50);
    await windows.commit();
    expect(await windows.read(fresh)).toEqual({ until: 3_000, path: '/r/new.json', arrived: 50 });
    expect(await new UnitWindows(indexPath, 'r').read(fresh)).toEqual({
      until: 3_000,
      path: '/r/new.json',
      arrived: 50,
    });
    // A record can never be shortened: an earlier window leaves it as it is.
    await windows.extend(older, 1_000, '/r/moved.vhd');
    await windows.commit();
    expect(await new UnitWindows(indexPath, 'r').read(older)).toEqual({ until: 7_000, path: '/r/old.vhd' });

    // Forgotten (lifted): gone from the disk and from what it reads; a unit without a record is skipped.
    await windows.forgetAll([older, fresh, { ...identity, ino: '63' }]);
    expect(await windows.read(older)).toBeUndefined();
    expect(await windows.read(fresh)).toBeUndefined();
    expect((await readdir(folder)).sort()).toEqual([nameOf(damaged)]);
    // Locked again after its lift: recorded anew.
    await windows.extend(fresh, 9_000, '/r/new.json');
    await windows.commit();
    expect(await new UnitWindows(indexPath, 'r').read(fresh)).toEqual({ until: 9_000, path: '/r/new.json' });
  });

  it('beside a writer, sees a record another process committed after its listing', async () => {
    const indexPath = await tempFolder();
    const reader = new UnitWindows(indexPath, 'r');
    const unlisted = new UnitWindows(indexPath, 'r');
    // Both list now: no record yet.
    expect(await reader.read(identity)).toBeUndefined();
    expect(await unlisted.read(identity)).toBeUndefined();
    reader.besideWriter();
    // The daemon (its own store) locks the unit and commits its window.
    const daemon = new UnitWindows(indexPath, 'r');
    await daemon.extend(identity, 9_000, '/r/vm-a/x.vhd');
    await daemon.commit();
    // `hold start` beside it must not take the unit for one without a window (it would unlock it).
    expect(await reader.read(identity)).toEqual({ until: 9_000, path: '/r/vm-a/x.vhd' });
    // A store that only lists at its first use does not see it: what besideWriter() is for.
    expect(await unlisted.read(identity)).toBeUndefined();
  });

  it('reads every unit as locked for ever when its records cannot be listed', async () => {
    const indexPath = await tempFolder();
    await mkdir(path.join(indexPath, '.windows'));
    // Not a folder: it cannot be listed, and says nothing of which units have a record.
    await writeFile(path.join(indexPath, '.windows', 'r'), '');
    const windows = new UnitWindows(indexPath, 'r');
    expect((await windows.read(identity))?.until).toBe(Number.POSITIVE_INFINITY);
    // No window can be extended past an unknown one, nor forgotten.
    await windows.extend(identity, 1_000, '/r/a.json', 10);
    await windows.commit();
    await expect(windows.forgetAll([identity])).rejects.toThrow();
  });

  it("a failed commit loses no other caller's record: the next commit makes them durable", async () => {
    const indexPath = await tempFolder();
    const windows = new UnitWindows(indexPath, 'r');
    const mine = { ...identity, ino: '50' };
    const theirs = { ...identity, ino: '51' };
    // One lock batch stages a record, another one its own; the first commits (for both) and fails: where its record
    // goes there is now something the record cannot replace.
    await windows.extend(mine, 1_000, '/r/a.vhd');
    await windows.extend(theirs, 2_000, '/r/b.vhd');
    const blocked = path.join(windows.folder, nameOf(mine));
    await mkdir(path.join(blocked, 'inside'), { recursive: true });
    await expect(windows.commit()).rejects.toThrow();
    expect(await windows.read(mine)).toEqual({ until: 1_000, path: '/r/a.vhd' });
    expect(await windows.read(theirs)).toEqual({ until: 2_000, path: '/r/b.vhd' });

    // The other batch's commit, once the fault is gone: both records on disk, as another process reads them.
    await rmdir(path.join(blocked, 'inside'));
    await rmdir(blocked);
    await windows.commit();
    const reader = new UnitWindows(indexPath, 'r');
    expect(await reader.read(mine)).toEqual({ until: 1_000, path: '/r/a.vhd' });
    expect(await reader.read(theirs)).toEqual({ until: 2_000, path: '/r/b.vhd' });
    expect((await readdir(windows.folder)).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });

  it('writes a new record ahead of the lock in place, which the lock then finds; an existing one waits for commit()', async () => {
    const indexPath = await tempFolder();
    const windows = new UnitWindows(indexPath, 'r');
    await windows.writeAhead([{ identity, until: 1_000, path: '/r/a.json', arrived: 100 }]);
    // Whole on disk at once, before any commit, and nothing else in the folder.
    const file = path.join(windows.folder, nameOf(identity));
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({
      version: 1,
      until: 1_000,
      path: '/r/a.json',
      arrived: 100,
    });
    expect(await readdir(windows.folder)).toEqual([nameOf(identity)]);
    const { ino } = await stat(file);
    // The lock of the same inode finds it: its commit puts nothing in place (the same file, not a rename).
    expect(await windows.extend(identity, 1_000, '/r/a.json', 100)).toEqual({
      until: 1_000,
      path: '/r/a.json',
      arrived: 100,
    });
    await windows.commit();
    expect((await stat(file)).ino).toBe(ino);
    // A record that exists is never rewritten ahead: a power loss could tear it. It is extended at commit().
    await windows.writeAhead([{ identity, until: 5_000, path: '/r/b.json' }]);
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ until: 1_000 });
    await windows.extend(identity, 5_000, '/r/b.json');
    await windows.commit();
    expect(await new UnitWindows(indexPath, 'r').read(identity)).toEqual({
      until: 5_000,
      path: '/r/b.json',
      arrived: 100,
    });
  });

  it('reads a record a power loss cut before its first sync as no record, and records that unit whole again', async () => {
    const indexPath = await tempFolder();
    const folder = path.join(indexPath, '.windows', 'r');
    const empty = { ...identity, ino: '70' };
    const zeros = { ...identity, ino: '71' };
    // Created in place ahead of a lock, its data never written back: empty (ext4), or zeros where a block was allocated.
    await mkdir(folder, { recursive: true });
    await writeFile(path.join(folder, nameOf(empty)), '');
    await writeFile(path.join(folder, nameOf(zeros)), Buffer.alloc(80));
    const windows = new UnitWindows(indexPath, 'r');
    // Its unit was not locked for it, and it replaced no record: what was there before it, nothing.
    expect(await windows.read(empty)).toBeUndefined();
    expect(await windows.read(zeros)).toBeUndefined();
    // The next lock of that unit records it as any other.
    await windows.writeAhead([{ identity: empty, until: 3_000, path: '/r/c.json', arrived: 30 }]);
    await windows.extend(empty, 3_000, '/r/c.json', 30);
    await windows.commit();
    expect(await new UnitWindows(indexPath, 'r').read(empty)).toEqual({ until: 3_000, path: '/r/c.json', arrived: 30 });
  });

  it('says when the daemon first watched the remote, written once', async () => {
    const indexPath = await tempFolder();
    expect(await new UnitWindows(indexPath, 'r').watchSince(1_000)).toEqual({ since: 1_000, first: true });
    // A later start, in another process.
    expect(await new UnitWindows(indexPath, 'r').watchSince(9_000)).toEqual({ since: 1_000, first: false });
  });

  it("removes at its first commit the temporary files a dead process's commit left, and nothing else", async () => {
    const indexPath = await tempFolder();
    const windows = new UnitWindows(indexPath, 'r');
    await windows.watchSince(1_000);
    await windows.extend(identity, 2_000, '/r/a.json', 100);
    await windows.commit();
    const record = nameOf(identity);
    const dead = spawnSync('true').pid;
    const alive = spawn('sleep', ['600']);
    try {
      const left = (pid: number, n: number): string => `${record}.${pid}.${n}.tmp`;
      const leftovers = [left(dead, 1), left(dead, 2)];
      // A live process's own (another's, this one's), and what is not a commit's temporary file, are kept.
      const kept = [left(alive.pid!, 1), left(process.pid, 999_999), 'notes.tmp', `${record}.tmp`];
      for (const name of [...leftovers, ...kept]) await writeFile(path.join(windows.folder, name), '{"until":');
      const reopened = new UnitWindows(indexPath, 'r');
      const other = { ...identity, ino: '44' };
      await reopened.extend(other, 3_000, '/r/b.json', 200);
      await reopened.commit();
      expect((await readdir(windows.folder)).sort()).toEqual([...kept, record, nameOf(other), 'since.json'].sort());
      expect(await reopened.read(identity)).toEqual({ until: 2_000, path: '/r/a.json', arrived: 100 });
    } finally {
      alive.kill();
    }
  });
});
