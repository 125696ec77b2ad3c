import { describe, expect, it } from 'vitest';
import { wrapLine } from '../../src/cli/render.js';
import { renderStatus } from '../../src/status/render.js';
import { buildStatus } from '../../src/status/report.js';

const words = (lines: string[]): string[] => lines.join(' ').split(/ +/).filter(Boolean);

describe('status for humans', () => {
  it('wraps a long FROZEN reason within 80 columns and keeps every word of it, the fix included', () => {
    const reason =
      'the wall clock moved 3 days ahead of the monotonic clock while the daemon was running ' +
      '(2026-12-01T10:00:00.000Z to 2026-12-04T10:00:05.000Z); if the new time is right, run ' +
      '`xo-immutable-backups lift --accept-clock`';
    const report = buildStatus({
      now: Date.parse('2026-12-04T10:00:06Z'),
      daemon: undefined,
      daemonProcessExists: false,
      frozenReason: reason,
      maxUserWatches: undefined,
      remotes: [],
    });
    const lines = renderStatus(report).flatMap((l) => wrapLine(l));
    for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(80);
    const frozen = lines.findIndex((l) => l.startsWith('lifting:   FROZEN:'));
    const wrapped = lines.slice(
      frozen,
      lines.findIndex((l, i) => i > frozen && !l.startsWith('  ')),
    );
    expect(words(wrapped)).toEqual(words([`lifting:   FROZEN: ${reason}`]));
    expect(wrapped.at(-1)).toContain('lift --accept-clock`');
  });

  it('leaves short lines alone, indents continuations, and never cuts a word longer than the line', () => {
    expect(wrapLine('  protected: 3 unit(s)')).toEqual(['  protected: 3 unit(s)']);
    const path = `/srv/backups/xo-vm-backups/${'a'.repeat(90)}/vdis/x.vhd`;
    expect(wrapLine(`    ${path} is pending`, 80)).toEqual([`    ${path}`, '      is pending']);
    const long = wrapLine(`  ${'word '.repeat(40).trim()}`, 30);
    expect(long.slice(1).every((l) => l.startsWith('    word'))).toBe(true);
    expect(long.every((l) => l.length <= 30)).toBe(true);
    expect(words(long)).toHaveLength(40);
  });
});
