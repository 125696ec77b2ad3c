import { describe, expect, it } from 'vitest';
import { assertImmutableCapability, parseEffectiveCapabilities } from '../../src/attributes/capability.js';
import { AppError } from '../../src/errors.js';

const status = (capEff: string): string => `Name:\tnode\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t${capEff}\n`;

describe('CAP_LINUX_IMMUTABLE check', () => {
  it('passes with the full root set and with bit 9 alone', () => {
    expect(() => assertImmutableCapability(status('000001ffffffffff'))).not.toThrow();
    expect(() => assertImmutableCapability(status('0000000000000200'))).not.toThrow();
  });

  it('refuses without bit 9, naming the capability and how to grant it', () => {
    try {
      assertImmutableCapability(status('000001fffffffdff'));
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(AppError);
      const appError = error as AppError;
      expect(appError.code).toBe('MISSING_CAPABILITY');
      expect(appError.message).toContain('CAP_LINUX_IMMUTABLE');
      expect(appError.hint).toContain('root');
    }
  });

  it('refuses when the status has no CapEff line', () => {
    expect(parseEffectiveCapabilities('Name:\tnode\n')).toBeUndefined();
    expect(() => assertImmutableCapability('Name:\tnode\n')).toThrow(/CAP_LINUX_IMMUTABLE/);
  });
});
