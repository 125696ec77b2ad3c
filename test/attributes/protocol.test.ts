import { describe, expect, it } from 'vitest';
import { encodeRecords, outcomeOf, parseHelperOutput, relativeWithin } from '../../src/attributes/protocol.js';

describe('relativeWithin', () => {
  const within = { root: '/srv/link-to-remote', realRoot: '/mnt/disk/remote' };

  it('gives a path below the root, or its real path, relative to it, and the root itself as "."', () => {
    expect(relativeWithin(within, '/srv/link-to-remote/xo-vm-backups/vm/a.json')).toBe('xo-vm-backups/vm/a.json');
    expect(relativeWithin(within, '/mnt/disk/remote/xo-vm-backups')).toBe('xo-vm-backups');
    expect(relativeWithin(within, '/srv/link-to-remote')).toBe('.');
    expect(relativeWithin({ root: '/', realRoot: '/' }, '/etc')).toBe('etc');
  });

  it('refuses anything outside, or with a component left to resolve', () => {
    for (const p of [
      '/srv/link-to-remote-2/a',
      '/etc/passwd',
      '/srv/link-to-remote/../etc',
      '/srv/link-to-remote/a/./b',
      '/srv/link-to-remote//a',
      '/srv/link-to-remote/a/',
    ])
      expect(relativeWithin(within, p), p).toBeUndefined();
  });
});

describe('the helper protocol', () => {
  it('ends each record with a NUL, so a name may hold a newline, a tab or a space', () => {
    expect(
      encodeRecords([
        { relative: 'a\nb c', recursive: true, ino: '12' },
        { relative: '.', recursive: false },
      ]),
    ).toBe('R 12 a\nb c\0F - .\0');
  });

  it('reads one answer per record and whether the run reached its end', () => {
    const output = parseHelperOutput(
      '0\tok\t-\t\n1\tvanished\tENOENT\t/r/gone: No such file or directory\n' +
        '2\tfailed\tENOTSUP\t/r/l is a symbolic link: not followed\n3\ton\t-\t\nend\t4\n',
    );
    expect(output.complete).toBe(true);
    expect(output.anchor).toBeUndefined();
    expect([...output.answers]).toEqual([
      [0, { status: 'ok' }],
      [1, { status: 'vanished' }],
      [2, { status: 'failed', code: 'ENOTSUP', message: '/r/l is a symbolic link: not followed' }],
      [3, { status: 'on' }],
    ]);
    expect(outcomeOf('/r/x', undefined)).toMatchObject({ status: 'failed', code: 'EUNKNOWN' });
  });

  it('reports a run cut short, and a refused root', () => {
    expect(parseHelperOutput('0\tok\t-\t\n').complete).toBe(false);
    expect(parseHelperOutput('anchor\tECONFINE\t/r resolves to /x, not /r as at start\n').anchor).toEqual({
      code: 'ECONFINE',
      message: '/r resolves to /x, not /r as at start',
    });
  });
});
