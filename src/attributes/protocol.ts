import type { PathOutcome, Within } from './adapter.js';

// The flag helper's language (libexec/xo-immutable-flags.pl): records in, one line per record out. Pure.

// `p` relative to the folder it is walked from ('.' for the folder itself), or undefined when it is not plainly below
// it: written as path.join writes paths (no "//", ".", ".." or trailing "/"), so nothing is left to resolve.
export function relativeWithin(within: Within, p: string): string | undefined {
  for (const base of new Set([within.root, within.realRoot])) {
    if (p === base) return '.';
    const prefix = base.endsWith('/') ? base : `${base}/`;
    if (!p.startsWith(prefix)) continue;
    const rest = p.slice(prefix.length);
    if (rest.split('/').some((part) => part === '' || part === '.' || part === '..')) return undefined;
    return rest;
  }
  return undefined;
}

export interface HelperRecord {
  relative: string;
  recursive: boolean;
  ino?: string;
}

// "<R|F> <inode or -> <relative path>\0" each: a NUL is the one byte no name holds.
export function encodeRecords(records: readonly HelperRecord[]): string {
  return records.map((r) => `${r.recursive ? 'R' : 'F'} ${r.ino ?? '-'} ${r.relative}\0`).join('');
}

export type HelperAnswer =
  { status: 'ok' | 'vanished' | 'on' | 'off' } | { status: 'failed'; code: string; message: string };

export interface HelperOutput {
  // By record number; a record with none was not reached (the helper stopped).
  answers: Map<number, HelperAnswer>;
  // The helper refused the folder itself (not where it was at start, or gone): every record fails with this.
  anchor?: { code: string; message: string };
  complete: boolean;
}

// "<n>\t<status>\t<code>\t<message>" a record, then "end\t<count>"; "anchor\t<code>\t<message>" alone when the
// folder is refused. Messages are escaped by the helper, so a line is a line.
export function parseHelperOutput(stdout: string): HelperOutput {
  const answers = new Map<number, HelperAnswer>();
  let anchor: HelperOutput['anchor'];
  let complete = false;
  for (const line of stdout.split('\n')) {
    const [first = '', second = '', third = '', ...rest] = line.split('\t');
    if (first === 'end') complete = true;
    else if (first === 'anchor') anchor = { code: second, message: [third, ...rest].join('\t') };
    else if (/^\d+$/.test(first)) {
      const n = Number(first);
      if (second === 'failed') answers.set(n, { status: 'failed', code: third, message: rest.join('\t') });
      else if (second === 'ok' || second === 'vanished' || second === 'on' || second === 'off')
        answers.set(n, { status: second });
    }
  }
  return { answers, anchor, complete };
}

// The outcome of a change, as the rest of the daemon sees it.
export function outcomeOf(path: string, answer: HelperAnswer | undefined): PathOutcome {
  if (answer === undefined) return { path, status: 'failed', code: 'EUNKNOWN', message: 'no outcome reported' };
  if (answer.status === 'failed') return { path, status: 'failed', code: answer.code, message: answer.message };
  return { path, status: answer.status === 'vanished' ? 'vanished' : 'ok' };
}
