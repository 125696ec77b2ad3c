import { describe, expect, it } from 'vitest';
import { lockedEntry, pendingEntry } from '../../src/index/entry.js';
import type { StoredEntry } from '../../src/index/store.js';
import { foldGoverning, groupByPath, type GoverningFacts } from '../../src/index/units.js';
import { utcDay } from '../../src/remote/datetime.js';

const DAY = 86_400_000;
const t = Date.UTC(2026, 10, 15, 12, 0, 0);

function stored(unit: string, backupInstant: number, ino?: string): StoredEntry {
  const pending = pendingEntry(
    { remote: 'r', path: unit, kind: 'vm', recursive: false, backup: '/r/b.json', backupInstant },
    backupInstant,
  );
  const entry =
    ino === undefined
      ? pending
      : lockedEntry(pending, { dev: '1', ino, size: '3', mtimeNs: '4', ctimeNs: '5' }, backupInstant);
  return { day: utcDay(backupInstant), name: unit, entry, text: JSON.stringify(entry) };
}

describe('foldGoverning', () => {
  it('gives, batch by batch, the governing instant and identity groupByPath gives from the whole index', () => {
    const entries = [
      stored('/r/a', t, '10'),
      // Re-dated by a newer backup: the newer entry governs, with its identity.
      stored('/r/a', t + DAY, '11'),
      stored('/r/b', t + DAY, '20'),
      // A newer entry still pending keeps the identity an older one recorded.
      stored('/r/b', t + 2 * DAY),
      // An older entry read after a newer one changes nothing.
      stored('/r/c', t + 2 * DAY, '30'),
      stored('/r/c', t, '31'),
      stored('/r/d', t),
      { day: utcDay(t), name: 'unreadable', entry: undefined, text: '{' },
    ];
    const folded = new Map<string, GoverningFacts>();
    for (let i = 0; i < entries.length; i += 3)
      foldGoverning(
        folded,
        entries.slice(i, i + 3).map((item) => item.entry),
      );
    const grouped = groupByPath(entries).units;
    expect([...folded.keys()].sort()).toEqual(grouped.map((u) => u.path).sort());
    for (const unit of grouped)
      expect(folded.get(unit.path)).toEqual({
        governingInstant: unit.governingInstant,
        identity: unit.identity && { dev: unit.identity.dev, ino: unit.identity.ino, ctimeNs: unit.identity.ctimeNs },
      });
    expect(folded.get('/r/a')?.identity?.ino).toBe('11');
    expect(folded.get('/r/b')).toEqual({
      governingInstant: t + 2 * DAY,
      identity: { dev: '1', ino: '20', ctimeNs: '5' },
    });
    expect(folded.get('/r/c')?.identity?.ino).toBe('30');
    expect(folded.get('/r/d')?.identity).toBeUndefined();
  });
});
