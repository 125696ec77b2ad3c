import { describe, expect, it } from 'vitest';
import { judgeCompletion } from '../../src/backup/completion.js';

describe('judgeCompletion', () => {
  const now = 1_000_000;
  it('calls a json complete as soon as it parses, without waiting', () => {
    expect(judgeCompletion('{"mode":"delta"}', 16, now, now, 5000)).toEqual({ complete: true, completedAt: now });
  });

  it('waits on a half-written json and on an empty one', () => {
    expect(judgeCompletion('{"mode":', 8, now - 60_000, now, 5000)).toEqual({
      complete: true,
      completedAt: now - 55_000,
    });
    expect(judgeCompletion('{"mode":', 8, now - 1000, now, 5000)).toEqual({ complete: false, recheckAt: now + 4000 });
    expect(judgeCompletion('', 0, now - 60_000, now, 5000)).toEqual({ complete: false });
  });

  it('takes ciphertext as complete once it has stayed unchanged for the settle time', () => {
    const cipher = '\u00ff\u0012binary';
    expect(judgeCompletion(cipher, 100, now - 4999, now, 5000)).toEqual({ complete: false, recheckAt: now + 1 });
    expect(judgeCompletion(cipher, 100, now - 5000, now, 5000)).toEqual({ complete: true, completedAt: now });
  });
});
