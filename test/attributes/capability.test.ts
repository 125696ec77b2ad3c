import { describe, expect, it } from 'vitest';
import { assertCapabilities, parseEffectiveCapabilities } from '../../src/attributes/capability.js';
import { AppError } from '../../src/errors.js';

const status = (capEff: string): string =>
  `Name:\tnode\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t${capEff}\n`;

describe('capability check', () => {
  it('passes with the full root set and with the three it needs alone', () => {
    expect(() => assertCapabilities(status('000001ffffffffff'))).not.toThrow();
    expect(() => assertCapabilities(status('000000000000020a'))).not.toThrow();
  });

  it('refuses without bit 9, naming the capability and how to grant it', () => {
    try {
      assertCapabilities(status('000001fffffffdff'));
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(AppError);
      const appError = error as AppError;
      expect(appError.code).toBe('MISSING_CAPABILITY');
      expect(appError.message).toContain('CAP_LINUX_IMMUTABLE');
      expect(appError.hint).toContain('root');
    }
  });

  it('names CAP_FOWNER and CAP_DAC_OVERRIDE when they are missing', () => {
    expect(() => assertCapabilities(status('0000000000000200'))).toThrow(/CAP_FOWNER, CAP_DAC_OVERRIDE/);
  });

  it('refuses when the status has no CapEff line', () => {
    expect(parseEffectiveCapabilities('Name:\tnode\n')).toBeUndefined();
    expect(() => assertCapabilities('Name:\tnode\n')).toThrow(/CAP_LINUX_IMMUTABLE/);
  });
});
