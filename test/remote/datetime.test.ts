import { describe, expect, it } from 'vitest';
import { isDatetimeName, parseBackupDatetime, utcDay } from '../../src/remote/datetime.js';

describe('backup datetimes', () => {
  it('reads XO names as UTC, with or without the Z', () => {
    expect(parseBackupDatetime('20261122T061500Z')).toBe(Date.UTC(2026, 10, 22, 6, 15, 0));
    expect(parseBackupDatetime('20261122T061500')).toBe(Date.UTC(2026, 10, 22, 6, 15, 0));
    expect(parseBackupDatetime('20261122T061500Z.alias.vhd')).toBe(Date.UTC(2026, 10, 22, 6, 15, 0));
  });

  it('refuses names that are not real datetimes', () => {
    for (const name of [
      '20261322T000000Z',
      '20260230T000000Z',
      '20261122T250000Z',
      'cache.json.gz',
      '2026-11-22',
      '',
    ]) {
      expect(parseBackupDatetime(name), name).toBeUndefined();
    }
  });

  it('tells a date folder name from a name that only starts with a datetime', () => {
    expect(isDatetimeName('20261122T061500Z')).toBe(true);
    expect(isDatetimeName('20261122T061500Z.json')).toBe(false);
  });

  it('buckets by UTC day, edges at UTC midnight', () => {
    expect(utcDay(Date.UTC(2026, 10, 22, 23, 59, 59))).toBe('2026-11-22');
    expect(utcDay(Date.UTC(2026, 10, 23, 0, 0, 0))).toBe('2026-11-23');
  });
});
