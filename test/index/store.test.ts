import { execFileSync } from 'node:child_process';
import { lstat, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { commitGroup } from '../../src/index/commit.js';
import { entryName, lockedEntry, pendingEntry } from '../../src/index/entry.js';
import { identityOf, type Identity } from '../../src/remote/identity.js';
import { IndexStore } from '../../src/index/store.js';
import { mountFilesystem } from '../support/filesystems.js';
import { tempFolder } from '../support/remote.js';

const identity: Identity = { dev: '1', ino: '2', size: '3', mtimeNs: '4', ctimeNs: '5', birthtimeNs: '6' };
const request = {
  remote: 'r',
  path: '/remote/xo-vm-backups/vm/20261120T010203Z.json',
  kind: 'vm' as const,
  recursive: false,
  backup: 'b',
  backupInstant: Date.parse('2026-11-20T01:02:03Z'),
};

async function openStore(): Promise<IndexStore> {
  const store = new IndexStore(await tempFolder(), 'r');
  await store.open();
  return store;
}

describe('index store', () => {
  it('creates the entry once as pending and rewrites it in place as locked, leaving no other file', async () => {
    const store = await openStore();
    const pending = pendingEntry(request, Date.now());
    await store.write(pending);
    const file = store.entryPath('2026-11-20', request.path);
    const { ino } = await stat(file);
    await store.write(lockedEntry(pending, identity, Date.now()));
    expect((await stat(file)).ino).toBe(ino);
    expect(await readdir(path.dirname(file))).toEqual([entryName(request.path)]);
    expect(await store.read('2026-11-20', request.path)).toMatchObject({ state: 'locked', identity });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it('reads an entry rewritten with shorter text (padded, never truncated to garbage)', async () => {
    const store = await openStore();
    const pending = pendingEntry(request, Date.now());
    await store.write(lockedEntry(pending, identity, Date.now()));
    await store.write(pending);
    const text = await readFile(store.entryPath('2026-11-20', request.path), 'utf8');
    expect(text.endsWith(' \n')).toBe(true);
    expect(await store.read('2026-11-20', request.path)).toEqual(pending);
  });

  // Write-ahead: the pending entry is durable before the flag is set, its completion only once the next batch syncs.
  // The journal commits meanwhile (every 5 s, or another file's fsync): a completion that grew the file had its new size
  // committed without its data, and a power cut (FS_IOC_SHUTDOWN without flushing the journal, as xfstests' godown)
  // left the pending text followed by zeros: neither entry, a locked unit no lift would unlock.
  it('keeps an entry readable through a power cut after the journal committed its unsynced completion', async () => {
    const mountPoint = await mountFilesystem('ext4');
    const store = new IndexStore(path.join(mountPoint, 'index'), 'r');
    await store.open();
    const pending = pendingEntry(request, Date.now());
    await store.write(pending);
    await store.sync();
    await store.write(lockedEntry(pending, identityOf(await lstat(mountPoint, { bigint: true })), Date.now()));
    const other = path.join(mountPoint, 'other');
    await writeFile(other, 'other');
    await commitGroup(mountPoint, [other], []);
    execFileSync('xfs_io', ['-x', '-c', 'shutdown', mountPoint]);
    execFileSync('umount', [mountPoint]);
    execFileSync('mount', ['-o', 'loop', path.join(mountPoint, '..', 'image'), mountPoint]);
    expect((await store.read('2026-11-20', request.path))?.path).toBe(request.path);
  });

  it('refuses to write through a symbolic link planted at the entry name', async () => {
    const store = await openStore();
    const victim = path.join(await tempFolder(), 'victim');
    await writeFile(victim, 'keep');
    await store.write(pendingEntry({ ...request, path: '/other' }, Date.now()));
    await symlink(victim, store.entryPath('2026-11-20', request.path));
    await expect(store.write(pendingEntry(request, Date.now()))).rejects.toMatchObject({ code: 'ELOOP' });
    expect(await readFile(victim, 'utf8')).toBe('keep');
  });

  it('creates the day bucket again when another process removed it', async () => {
    const store = await openStore();
    await store.write(pendingEntry(request, Date.now()));
    await rm(path.join(store.folder, '2026-11-20'), { recursive: true });
    await store.write(pendingEntry(request, Date.now()));
    expect(await store.read('2026-11-20', request.path)).toMatchObject({ state: 'pending' });
  });

  it('streams a large bucket in batches and counts it again only once an entry was added or removed', async () => {
    const store = await openStore();
    const day = '2026-11-20';
    const paths = Array.from({ length: 2500 }, (_, i) => `/remote/xo-vm-backups/vm/${i}.vhd`);
    for (const p of paths) await store.write(pendingEntry({ ...request, path: p }, Date.now()));
    await writeFile(path.join(store.folder, day, 'not-an-entry'), 'x');
    const batches: string[][] = [];
    for await (const batch of store.streamNames(day)) batches.push(batch);
    expect(batches.length).toBe(3);
    expect(batches.flat().sort()).toEqual(paths.map((p) => entryName(p)).sort());
    expect(await store.countNames(day)).toBe(2500);
    await store.removeAll([{ day, name: entryName(paths[0]!) }]);
    expect(await store.countNames(day)).toBe(2499);
    expect(await store.countNames('2026-01-01')).toBe(0);
  });

  // A lift that forgets every entry of a bucket moves the bucket with one rename (lift/pass.ts).
  it('forgets a whole bucket at once, puts back what it was not told to forget, and writes into the day again', async () => {
    const store = new IndexStore(await tempFolder(), 'r', 100);
    await store.open();
    await store.countForCap();
    const day = '2026-11-20';
    const paths = [0, 1, 2].map((i) => `/remote/xo-vm-backups/vm/20261120T01020${i}Z.vhd`);
    for (const p of paths) await store.write(pendingEntry({ ...request, path: p }, Date.now()));
    expect(store.entries.count).toBe(3);
    // The third entry stands for one written by another process after the lift listed the bucket.
    const forgotten = new Set(paths.slice(0, 2).map((p) => entryName(p)));
    expect(await store.removeDay(day, forgotten)).toBe(true);
    expect(await store.names(day)).toEqual([entryName(paths[2]!)]);
    expect(await store.read(day, paths[2]!)).toMatchObject({ path: paths[2], state: 'pending' });
    expect(store.entries.count).toBe(1);
    const [moved] = await readdir(store.freed.folder);
    expect((await readdir(path.join(store.freed.folder, moved!))).sort()).toEqual([...forgotten].sort());

    // Gone whole this time: this store's writer, which knew the day's folder, makes it again.
    expect(await store.removeDay(day, new Set([entryName(paths[2]!)]))).toBe(true);
    expect(await store.listDays()).toEqual([]);
    expect(store.entries.count).toBe(0);
    await store.write(pendingEntry(request, Date.now()));
    expect(await store.read(day, request.path)).toMatchObject({ state: 'pending' });
    expect(store.entries.count).toBe(1);
    expect(await readdir(store.freed.folder)).toHaveLength(2);
  });

  it('at its cap re-dates an entry of a unit already indexed (no new entry), and refuses a new unit', async () => {
    const store = new IndexStore(await tempFolder(), 'r', 1);
    await store.open();
    await store.countForCap();
    await store.write(pendingEntry(request, Date.now()));
    const later = { ...request, backup: 'delta', backupInstant: Date.parse('2026-11-22T01:00:00Z') };
    await store.write(pendingEntry(later, Date.now()));
    expect(await store.listDays()).toEqual(['2026-11-20', '2026-11-22']);
    expect(await store.names('2026-11-20')).toEqual([]);
    expect(await store.read('2026-11-22', request.path)).toMatchObject({ backup: 'delta', day: '2026-11-22' });
    expect(store.entries.count).toBe(1);
    // An older claim never moves a newer entry back.
    const earlier = { ...request, backup: 'old', backupInstant: Date.parse('2026-11-21T01:00:00Z') };
    await expect(store.write(pendingEntry(earlier, Date.now()))).rejects.toMatchObject({ code: 'INDEX_FULL' });
    expect(await store.read('2026-11-22', request.path)).toMatchObject({ backup: 'delta' });
    const other = { ...request, path: '/remote/xo-vm-backups/vm/20261120T010203Z.xva' };
    await expect(store.write(pendingEntry(other, Date.now()))).rejects.toMatchObject({ code: 'INDEX_FULL' });
  });

  // A created entry keeps its descriptor for its completion: one open instead of two.
  it('completes through the descriptor kept since the create, and again in a new file if a lift unlinked it', async () => {
    const store = await openStore();
    const pending = pendingEntry(request, Date.now());
    const before = await readdir('/proc/self/fd');
    await store.write(pending, true);
    expect((await readdir('/proc/self/fd')).length).toBe(before.length + 1);
    const file = store.entryPath('2026-11-20', request.path);
    await rm(file);
    await store.write(lockedEntry(pending, identity, Date.now()));
    expect((await readdir('/proc/self/fd')).length).toBe(before.length);
    expect(await store.read('2026-11-20', request.path)).toMatchObject({ state: 'locked', identity });
    expect((await stat(file)).size).toBe((await readFile(file)).length);
  });

  it('closes the descriptors of entries whose completion did not come', async () => {
    const store = await openStore();
    const before = await readdir('/proc/self/fd');
    for (const name of ['a', 'b', 'c'])
      await store.write(pendingEntry({ ...request, path: `/r/${name}` }, Date.now()), true);
    expect((await readdir('/proc/self/fd')).length).toBe(before.length + 3);
    store.release();
    expect((await readdir('/proc/self/fd')).length).toBe(before.length);
    expect(await store.read('2026-11-20', '/r/b')).toMatchObject({ state: 'pending' });
  });
});
