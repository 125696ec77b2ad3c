import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../src/config/duration.js';

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

// Every form the README lists, and what it means: the README's list is this table.
const UNITS: [number, string[]][] = [
  [1, ['ms', 'msec', 'msecs', 'millisecond', 'milliseconds']],
  [S, ['s', 'sec', 'secs', 'second', 'seconds']],
  [M, ['m', 'min', 'mins', 'minute', 'minutes']],
  [H, ['h', 'hr', 'hrs', 'hour', 'hours']],
  [D, ['d', 'day', 'days']],
  [7 * D, ['w', 'week', 'weeks']],
  [365.25 * D, ['y', 'yr', 'yrs', 'year', 'years']],
];

describe('parseDuration', () => {
  it('reads every unit the README lists, with or without a space, in any case', () => {
    for (const [unitMs, names] of UNITS) {
      for (const name of names) {
        expect(parseDuration(`2${name}`), `2${name}`).toBe(2 * unitMs);
        expect(parseDuration(`2 ${name}`), `2 ${name}`).toBe(2 * unitMs);
        expect(parseDuration(`2${name.toUpperCase()}`), `2${name.toUpperCase()}`).toBe(2 * unitMs);
      }
    }
    expect(parseDuration('1 week')).toBe(7 * D);
    expect(parseDuration('1y')).toBe(365.25 * D);
    expect(parseDuration('1.5h')).toBe(1.5 * H);
    expect(parseDuration('7  days')).toBe(7 * D);
  });

  it('refuses what the README says is refused', () => {
    for (const text of ['7', '.5h', '-1d', '0d', ' 7d', '7d ', '7\td', '7 fortnights', '1e3d', 'd', ''])
      expect(parseDuration(text), JSON.stringify(text)).toBeUndefined();
  });
});
