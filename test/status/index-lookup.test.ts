import { describe, expect, it } from 'vitest';
import { lockedEntry, pendingEntry } from '../../src/index/entry.js';
import { IndexStore, type StoredEntry } from '../../src/index/store.js';
import { lookupByName, lookupIn } from '../../src/status/restore-survey.js';
import { tempFolder } from '../support/remote.js';

const DAY = 86_400_000;
const t = Date.parse('2026-11-20T01:02:03Z');

async function write(store: IndexStore, unit: string, backupInstant: number, ino?: string): Promise<void> {
  const pending = pendingEntry(
    { remote: 'r', path: unit, kind: 'vm', recursive: false, backup: '/r/b.json', backupInstant },
    backupInstant,
  );
  const identity = { dev: '1', ino: ino ?? '0', size: '3', mtimeNs: '4', ctimeNs: '5' };
  await store.write(ino === undefined ? pending : lockedEntry(pending, identity, backupInstant));
}

describe("the daemon's index lookup for the restore-point survey", () => {
  it('finds what the whole index read at once says of each path asked, holding only the names', async () => {
    const store = new IndexStore(await tempFolder(), 'r');
    await store.open();
    await write(store, '/r/vm/a.vhd', t, '10');
    // Claimed again by newer backups: the newest governs, and a pending newest keeps the identity recorded before.
    await write(store, '/r/vm/a.vhd', t + DAY, '11');
    await write(store, '/r/vm/a.vhd', t + 2 * DAY);
    await write(store, '/r/vm/b.vhd', t + 2 * DAY, '20');
    await write(store, '/r/vm/c.json', t);
    for (let i = 0; i < 50; i++) await write(store, `/r/other/${i}.vhd`, t + (i % 3) * DAY, String(i));
    const stored: StoredEntry[] = [];
    for (const day of await store.listDays()) stored.push(...(await store.readDay(day)));

    const asked = ['/r/vm/a.vhd', '/r/vm/b.vhd', '/r/vm/c.json', '/r/vm/never-indexed.vhd'];
    const found = await (await lookupByName(store))(asked);
    const whole = await lookupIn(stored)(asked);
    expect([...found.keys()].sort()).toEqual(['/r/vm/a.vhd', '/r/vm/b.vhd', '/r/vm/c.json']);
    for (const unit of found.keys()) expect(found.get(unit)).toEqual(whole.get(unit));
    expect(found.get('/r/vm/a.vhd')).toEqual({
      governingInstant: t + 2 * DAY,
      identity: { dev: '1', ino: '11', ctimeNs: '5' },
    });
    expect(found.get('/r/vm/c.json')?.identity).toBeUndefined();
  });
});
