import { hash } from 'node:crypto';
import { mkdir, readdir, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UnitWindows } from '../../src/index/windows.js';
import { tempFolder } from '../support/remote.js';

const identity = { dev: '1', ino: '42', size: '7', mtimeNs: '1', ctimeNs: '2', birthtimeNs: '3' };

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
    expect(await readdir(windows.folder)).toHaveLength(2);
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
    const blocked = path.join(windows.folder, hash('sha256', `${mine.ino}:${mine.birthtimeNs}`, 'hex'));
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

  it('says when the daemon first watched the remote, written once', async () => {
    const indexPath = await tempFolder();
    expect(await new UnitWindows(indexPath, 'r').watchSince(1_000)).toEqual({ since: 1_000, first: true });
    // A later start, in another process.
    expect(await new UnitWindows(indexPath, 'r').watchSince(9_000)).toEqual({ since: 1_000, first: false });
  });
});
