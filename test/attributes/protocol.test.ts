import { describe, expect, it } from 'vitest';
import {
  AnswerChunks,
  answerEnd,
  encodeRecords,
  encodeRequest,
  outcomeOf,
  parseHelperOutput,
  parseIdentity,
  recordKindOf,
  relativeWithin,
} from '../../src/attributes/protocol.js';

describe('relativeWithin', () => {
  const within = { root: '/srv/link-to-remote', realRoot: '/mnt/disk/remote' };

  it('gives a path below the root, or its real path, relative to it, and the root itself as "."', () => {
    expect(relativeWithin(within, '/srv/link-to-remote/xo-vm-backups/vm/a.json')).toBe('xo-vm-backups/vm/a.json');
    expect(relativeWithin(within, '/mnt/disk/remote/xo-vm-backups')).toBe('xo-vm-backups');
    expect(relativeWithin(within, '/srv/link-to-remote')).toBe('.');
    expect(relativeWithin({ root: '/', realRoot: '/' }, '/etc')).toBe('etc');
    // Dots inside a name are names.
    expect(relativeWithin(within, '/srv/link-to-remote/..a/.b/c..')).toBe('..a/.b/c..');
  });

  it('refuses anything outside, or with a component left to resolve', () => {
    for (const p of [
      '/srv/link-to-remote-2/a',
      '/etc/passwd',
      '/srv/link-to-remote/../etc',
      '/srv/link-to-remote/a/./b',
      '/srv/link-to-remote//a',
      '/srv/link-to-remote/a/',
      '/srv/link-to-remote/a/..',
      '/srv/link-to-remote/a/.',
      '/srv/link-to-remote/./a',
    ])
      expect(relativeWithin(within, p), p).toBeUndefined();
  });
});

describe('the helper protocol', () => {
  it('ends each record with a NUL, so a name may hold a newline, a tab or a space', () => {
    expect(
      encodeRecords([
        { relative: 'a\nb c', kind: 'V', ino: '12' },
        { relative: '.', kind: 'F' },
      ]),
    ).toBe('V 12 a\nb c\0F - .\0');
  });

  it('sends a birth time with the inode, unless it is "0" or not a plain number (the inode alone is checked)', () => {
    expect(
      encodeRecords([
        { relative: 'a', kind: 'F', ino: '12', birthtimeNs: '1700000000000000001' },
        { relative: 'b', kind: 'F', ino: '13', birthtimeNs: '0' },
        { relative: 'c', kind: 'F', ino: '14', birthtimeNs: '-5' },
        { relative: 'd', kind: 'F', birthtimeNs: '1' },
      ]),
    ).toBe('F 12:1700000000000000001 a\0F 13 b\0F 14 c\0F - d\0');
  });

  it('sends a request as its header, the root and the real root, then its records, each field ended by a NUL', () => {
    expect(
      encodeRequest('clear', { root: '/srv/r', realRoot: '/mnt/r' }, [
        { relative: 'vm/a.json', kind: 'F', ino: '7' },
        { relative: 'vm/b', kind: 'V' },
      ]),
    ).toBe('clear 2\0/srv/r\0/mnt/r\0F 7 vm/a.json\0V - vm/b\0');
  });

  it('finds the end of an answer only on a line of its own, however the output was cut', () => {
    const answer = '0\tfailed\tEIO\t/r/end\t1: Input/output error\nbusy\nend\t1\n';
    expect(answerEnd(answer)).toBe(answer.length);
    for (let cut = 0; cut < answer.length; cut++)
      expect(answerEnd(answer.slice(0, cut)), `cut at ${cut}`).toBeUndefined();
    expect(answerEnd('anchor\tECONFINE\t/r moved\nend\t0\n')).toBe(31);
  });

  it('gathers an answer from its chunks, however they were cut, whole once its end line came and not before', () => {
    const answer = '0\tok\t-\t-\t1 2 3 4 5 6\n1\tfailed\tEIO\t/r/end\t1: Input/output error\nbusy\nend\t2\n';
    // What the helper might write after it (nothing, in practice): left out.
    const output = `${answer}warn\tlate\n`;
    for (let first = 0; first <= output.length; first++)
      for (let second = first; second <= output.length; second++) {
        const chunks = new AnswerChunks();
        const pieces = [output.slice(0, first), output.slice(first, second), output.slice(second)];
        const got = pieces.map((piece) => chunks.push(piece));
        const endsIn = [first, second, output.length].findIndex((cut) => cut >= answer.length);
        expect(got, `cut at ${first}, ${second}`).toEqual(pieces.map((_, i) => (i === endsIn ? answer : undefined)));
      }
    // A long line (a message the helper did not cut, or warnings) in many chunks, then the end line.
    const long = `0\tfailed\tEIO\t${'x'.repeat(100_000)}\nend\t1\n`;
    const pieces = new AnswerChunks();
    const got: (string | undefined)[] = [];
    for (let at = 0; at < long.length; at += 997) got.push(pieces.push(long.slice(at, at + 997)));
    expect(got.at(-1)).toBe(long);
    expect(got.slice(0, -1).every((g) => g === undefined)).toBe(true);
    const cut = new AnswerChunks();
    expect(cut.push('0\tok\n')).toBeUndefined();
    expect(cut.push('en')).toBeUndefined();
    expect(cut.text()).toBe('0\tok\nen');
    expect(cut.length).toBe('0\tok\nen'.length);
  });

  it('names a directory unit by its layout, and a tree only when none is given', () => {
    expect(recordKindOf({ recursive: false, layout: 'vhd-directory' })).toBe('F');
    expect(recordKindOf({ recursive: true, layout: 'vhd-directory' })).toBe('V');
    expect(recordKindOf({ recursive: true, layout: 'date-folder' })).toBe('D');
    expect(recordKindOf({ recursive: true })).toBe('R');
    // A file, or a directory of the layout, whichever the helper opens (lift); without a layout, a file only.
    expect(recordKindOf({ recursive: false, orDirectory: true, layout: 'vhd-directory' })).toBe('v');
    expect(recordKindOf({ recursive: false, orDirectory: true, layout: 'date-folder' })).toBe('d');
    expect(recordKindOf({ recursive: false, orDirectory: true })).toBe('F');
    // A VM json held to its backup's flat VHDs, whatever its entry says (lift's jsons at the end of a pass).
    expect(recordKindOf({ recursive: false, orDirectory: true, layout: 'vhd-directory', afterFlatVhds: true })).toBe(
      'J',
    );
  });

  it('reads the identity of what was acted on, and nothing from a field that is not one', () => {
    const output = parseHelperOutput('0\tok\t-\t\t2049 12 4096 1700000000000000001 1700000000000000002 0\nend\t1\n');
    expect(output.answers.get(0)).toEqual({
      status: 'ok',
      identity: {
        dev: '2049',
        ino: '12',
        size: '4096',
        mtimeNs: '1700000000000000001',
        ctimeNs: '1700000000000000002',
        birthtimeNs: '0',
      },
    });
    expect(outcomeOf('/r/x', output.answers.get(0))).toMatchObject({ status: 'ok', identity: { ino: '12' } });
    for (const bad of ['', '1 2 3', '1 2 3 4 5 x', '1 2 3 4 5 6 7']) expect(parseIdentity(bad), bad).toBeUndefined();
    expect(parseHelperOutput('0\tok\t-\t\t1 2\n').answers.get(0)).toEqual({ status: 'ok' });
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

  it('keeps the warnings sent with an answer, and reads a busy line as nothing', () => {
    const output = parseHelperOutput('busy\nwarn\tUse of uninitialized value at line 9.\\x0a\n0\ton\t-\t\nend\t1\n');
    expect(output.warnings).toEqual(['Use of uninitialized value at line 9.\\x0a']);
    expect([...output.answers]).toEqual([[0, { status: 'on' }]]);
    expect(output.complete).toBe(true);
  });

  it('reports a run cut short, and a refused root', () => {
    expect(parseHelperOutput('0\tok\t-\t\n').complete).toBe(false);
    // Killed in the middle of a line: the piece is no answer, whatever it starts with.
    const cut = parseHelperOutput('0\tok\t-\t\t1 2 3 4 5 6\n1\tok\t-\t\t1 2');
    expect([...cut.answers.keys()]).toEqual([0]);
    expect(parseHelperOutput('0\tok\t-\t\nend\t1').complete).toBe(false);
    expect(parseHelperOutput('anchor\tECONFINE\t/r resolves to /x, not /r as at start\n').anchor).toEqual({
      code: 'ECONFINE',
      message: '/r resolves to /x, not /r as at start',
    });
  });
});
