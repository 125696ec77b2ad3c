import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { expect } from 'vitest';
import { parseHelperOutput, type HelperAnswer } from '../../src/attributes/protocol.js';

const HELPER = path.resolve('libexec/xo-immutable-flags.pl');

// One request to the flag helper run directly (perl's warnings on, as every test runs it), at most `openFiles`
// descriptors open when given: the answer of each record, in order. It must end whole, without a warning.
export function askHelper(
  operation: string,
  root: string,
  records: readonly string[],
  { env = {}, openFiles }: { env?: Record<string, string>; openFiles?: number } = {},
): (HelperAnswer | undefined)[] {
  const input = `${operation} ${records.length}\0${root}\0${root}\0${records.map((r) => `${r}\0`).join('')}`;
  const [command, args] =
    openFiles === undefined
      ? ['perl', [HELPER]]
      : ['/bin/sh', ['-c', `ulimit -n ${openFiles} && exec perl "$0"`, HELPER]];
  const out = spawnSync(command, args, {
    input,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', XO_IMMUTABLE_FLAGS_WARNINGS: '1', ...env },
  });
  expect(out.stderr).toBe('');
  expect(out.stdout).not.toMatch(/^warn\t/m);
  const { answers, complete } = parseHelperOutput(out.stdout);
  expect(complete).toBe(true);
  return records.map((_, i) => answers.get(i));
}
