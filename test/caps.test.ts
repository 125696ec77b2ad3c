import { describe, expect, it } from 'vitest';
import { CapGauge, capLevel, type CapLevel } from '../src/caps.js';

describe('CapGauge', () => {
  it('is near from 80% of the cap and reached at the cap', () => {
    expect([0, 7, 8, 9, 10, 11].map((count) => capLevel(count, 10))).toEqual([
      'below',
      'below',
      'near',
      'near',
      'reached',
      'reached',
    ]);
    expect([0, 1].map((count) => capLevel(count, 1))).toEqual(['below', 'reached']);
  });

  it('tells each crossing once, and again after the count went back below', () => {
    const heard: [CapLevel, CapLevel][] = [];
    const gauge = new CapGauge(10);
    gauge.listen((level, previous) => heard.push([level, previous]));
    for (const count of [1, 8, 9, 8, 10, 11, 10, 9, 3, 2, 8]) gauge.set(count);
    expect(heard).toEqual([
      ['near', 'below'],
      ['reached', 'near'],
      ['near', 'reached'],
      ['below', 'near'],
      ['near', 'below'],
    ]);
  });
});
