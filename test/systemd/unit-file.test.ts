import { describe, expect, it } from 'vitest';
import { lastValue, listValue, parseBoolean, parseUnit, splitWords } from '../../src/systemd/unit-file.js';

describe('parseUnit', () => {
  it('reads sections, skips comments, joins continued lines, and applies drop-ins after the unit', () => {
    const unit = parseUnit([
      {
        path: '/etc/systemd/system/a.service',
        text: [
          '# comment',
          '; comment too',
          '[Unit]',
          'Description = one \\',
          '  two',
          '[Service]',
          'ProtectSystem=full',
          'ReadWritePaths=/a /b',
          'ReadWritePaths=-/c',
          'NotAnAssignment',
        ].join('\n'),
      },
      { path: '/etc/systemd/system/a.service.d/x.conf', text: '[Service]\nProtectSystem=strict\nReadWritePaths=/d\n' },
    ]);
    expect(lastValue(unit, 'Unit', ['Description'])).toBe('one  two');
    expect(lastValue(unit, 'Service', ['ProtectSystem'])).toBe('strict');
    expect(listValue(unit, 'Service', ['ReadWritePaths']).map((w) => w.word)).toEqual(['/a', '/b', '-/c', '/d']);
    // A key in another section is another setting.
    expect(lastValue(unit, 'Unit', ['ProtectSystem'])).toBeUndefined();
  });

  it('empties a list on an empty assignment, and resets a single value to its default', () => {
    const unit = parseUnit([
      { path: 'u', text: '[Service]\nReadWritePaths=/a\nProtectHome=yes\n' },
      { path: 'd', text: '[Service]\nReadWritePaths=\nReadWritePaths=/b\nProtectHome=\n' },
    ]);
    expect(listValue(unit, 'Service', ['ReadWritePaths']).map((w) => [w.word, w.source])).toEqual([['/b', 'd']]);
    expect(lastValue(unit, 'Service', ['ProtectHome'])).toBeUndefined();
  });

  it('keeps quoted spaces in one word and reads systemd booleans', () => {
    expect(splitWords(`"-/srv/a b" '/c d' /e\\ f  /g`)).toEqual(['-/srv/a b', '/c d', '/e f', '/g']);
    expect([parseBoolean('on'), parseBoolean('No'), parseBoolean('strict'), parseBoolean(undefined)]).toEqual([
      true,
      false,
      undefined,
      undefined,
    ]);
  });
});
