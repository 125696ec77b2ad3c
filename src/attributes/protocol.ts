import type { AttributesIdentity as Identity, PathOutcome, Target, Within } from './adapter.js';

// The flag helper's language (libexec/xo-immutable-flags.pl): requests of records in, one line per record out. Pure.

// A component that is empty, "." or "..": one test a path, not a split (the lift sends tens of thousands).
const NOT_PLAIN = /(?:^|\/)\.{0,2}(?:\/|$)/;

// `p` relative to the folder it is walked from ('.' for the folder itself), or undefined when it is not plainly below
// it: written as path.join writes paths (no "//", ".", ".." or trailing "/"), so nothing is left to resolve.
export function relativeWithin(within: Within, p: string): string | undefined {
  for (const base of new Set([within.root, within.realRoot])) {
    if (p === base) return '.';
    const prefix = base.endsWith('/') ? base : `${base}/`;
    if (!p.startsWith(prefix)) continue;
    const rest = p.slice(prefix.length);
    return NOT_PLAIN.test(rest) ? undefined : rest;
  }
  return undefined;
}

// F a regular file; V a VHD directory and D a config or pool date folder, each holding XO's layout and nothing else;
// v and d a regular file, or a directory held to V or D, whichever the path opens (clear only); R a folder and
// everything in it (decommissioning, clear only); ? whatever it is (get only); J a VM backup's json, a regular file
// cleared only when no flat VHD of its backup is immutable (clear only).
export type RecordKind = 'F' | 'V' | 'D' | 'v' | 'd' | 'R' | '?' | 'J';

export interface HelperRecord {
  relative: string;
  kind: RecordKind;
  ino?: string;
  birthtimeNs?: string;
}

// The record a target becomes: its layout decides what the helper accepts inside it (docs/architecture.md).
export function recordKindOf(
  target: Pick<Target, 'recursive' | 'layout' | 'orDirectory' | 'afterFlatVhds'>,
): RecordKind {
  if (!target.recursive) {
    if (target.afterFlatVhds === true) return 'J';
    if (target.orDirectory !== true) return 'F';
    return target.layout === 'vhd-directory' ? 'v' : target.layout === 'date-folder' ? 'd' : 'F';
  }
  if (target.layout === 'vhd-directory') return 'V';
  if (target.layout === 'date-folder') return 'D';
  return 'R';
}

// check: a clear that changes nothing (lift --dry-run), answered as the clear would be.
export type Operation = 'set' | 'clear' | 'check' | 'get';

// "<kind> <inode[:birth ns] or -> <relative path>\0" each: a NUL is the one byte no name holds. A birth time of "0"
// (not kept) or not a plain number is not sent: the inode alone is checked, as lift's own check did.
export function encodeRecords(records: readonly HelperRecord[]): string {
  return records.map((r) => `${r.kind} ${identityField(r)} ${r.relative}\0`).join('');
}

function identityField({ ino, birthtimeNs }: HelperRecord): string {
  if (ino === undefined) return '-';
  return checksBirthTime(birthtimeNs) ? `${ino}:${birthtimeNs}` : ino;
}

// Whether the helper is sent, and so compares, this birth time: a plain number other than "0" (not kept).
export function checksBirthTime(birthtimeNs: string | undefined): birthtimeNs is string {
  return birthtimeNs !== undefined && /^[1-9]\d*$/.test(birthtimeNs);
}

// One request to a running helper: what to do, the folder it is confined to (opened again for this request), and as
// many records as the header says.
export function encodeRequest(operation: Operation, within: Within, records: readonly HelperRecord[]): string {
  return `${operation} ${records.length}\0${within.root}\0${within.realRoot}\0${encodeRecords(records)}`;
}

// Where the answer to a request ends in `text` (after its "end\t<n>" line), or undefined until it has come. `text`
// starts at the start of a line.
export function answerEnd(text: string): number | undefined {
  const match = /^end\t\d+\n/m.exec(text);
  return match === null ? undefined : match.index + match[0].length;
}

// "end\t" and a count of up to 9 digits (the helper reads no larger request), with room to spare.
const END_LINE_MAX = 32;

// A request's answer as it comes, chunk by chunk, kept in the chunks it came in and joined once (a string grown by
// each chunk and searched whole is copied at every chunk: quadratic in an answer of thousands of records).
export class AnswerChunks {
  #chunks: string[] = [];
  #length = 0;
  // The last line so far, cut short by the chunk's end: where the end line may start.
  #partial = '';
  #ended = false;

  get length(): number {
    return this.#length;
  }

  // The whole answer once `chunk` ends it (what follows its end line is left out), or undefined (also for any chunk
  // after that one).
  push(chunk: string): string | undefined {
    if (this.#ended) return undefined;
    const lines = this.#partial + chunk;
    const end = answerEnd(lines);
    if (end !== undefined) {
      this.#chunks.push(chunk.slice(0, end - this.#partial.length));
      this.#ended = true;
      return this.text();
    }
    this.#chunks.push(chunk);
    this.#length += chunk.length;
    // A line longer than an end line cannot become one: kept as one character that starts no line, so that a long
    // line coming in many chunks is not copied again at each.
    const line = lines.slice(lines.lastIndexOf('\n') + 1);
    this.#partial = line.length > END_LINE_MAX ? '-' : line;
    return undefined;
  }

  // What came so far.
  text(): string {
    return this.#chunks.join('');
  }
}

export type HelperAnswer =
  | { status: 'ok' | 'vanished' | 'on' | 'off'; identity?: Identity; warning?: LockWarning }
  | { status: 'failed'; code: string; message: string };

// A unit locked all the same although it holds what XO never writes (EFOREIGN) or has a second name (ELINKS).
export interface LockWarning {
  code: string;
  message: string;
}

export interface HelperOutput {
  // By record number; a record with none was not reached (the helper stopped).
  answers: Map<number, HelperAnswer>;
  // The helper refused the folder itself (not where it was at start, or gone): every record fails with this.
  anchor?: { code: string; message: string };
  complete: boolean;
  // perl's warnings while it served the request.
  warnings: string[];
}

// "<dev> <ino> <size> <mtime ns> <ctime ns> <birth ns>", as statx gave them on the descriptor acted on.
export function parseIdentity(text: string | undefined): Identity | undefined {
  const fields = text === undefined ? null : IDENTITY.exec(text);
  if (fields === null) return undefined;
  const [, dev, ino, size, mtimeNs, ctimeNs, birthtimeNs] = fields as unknown as [string, ...string[]];
  return { dev, ino, size, mtimeNs, ctimeNs, birthtimeNs } as Identity;
}

const IDENTITY = /^(-?\d+) (-?\d+) (-?\d+) (-?\d+) (-?\d+) (-?\d+)$/;

// "<n>\t<status>\t<code>\t<message>[\t<identity>]" a record, then "end\t<count>"; "anchor\t<code>\t<message>" instead
// when the folder is refused; "warn\t<message>" and "busy" anywhere. Messages are escaped by the helper (no tab, no
// newline), so a field is a field.
export function parseHelperOutput(stdout: string): HelperOutput {
  const answers = new Map<number, HelperAnswer>();
  let anchor: HelperOutput['anchor'];
  let complete = false;
  const warnings: string[] = [];
  // A line is one once its newline came: a helper killed in the middle of a write leaves a piece, which says nothing.
  const lines = stdout.split('\n');
  lines.pop();
  for (const line of lines) {
    const [first = '', second = '', third = '', message = '', identityText] = line.split('\t');
    if (first === 'end') complete = true;
    else if (first === 'anchor') anchor = { code: second, message: third };
    else if (first === 'warn') warnings.push(second);
    else if (/^\d+$/.test(first)) {
      const n = Number(first);
      if (second === 'failed') answers.set(n, { status: 'failed', code: third, message });
      else if (second === 'ok' || second === 'vanished' || second === 'on' || second === 'off') {
        const identity = parseIdentity(identityText);
        const warning = second === 'ok' && third !== '-' && third !== '' ? { code: third, message } : undefined;
        answers.set(n, {
          status: second,
          ...(identity === undefined ? {} : { identity }),
          ...(warning === undefined ? {} : { warning }),
        });
      }
    }
  }
  return { answers, anchor, complete, warnings };
}

// The outcome of a change, as the rest of the daemon sees it.
export function outcomeOf(path: string, answer: HelperAnswer | undefined): PathOutcome {
  if (answer === undefined) return { path, status: 'failed', code: 'EUNKNOWN', message: 'no outcome reported' };
  if (answer.status === 'failed') return { path, status: 'failed', code: answer.code, message: answer.message };
  if (answer.status === 'vanished') return { path, status: 'vanished' };
  return {
    path,
    status: 'ok',
    ...(answer.identity === undefined ? {} : { identity: answer.identity }),
    ...(answer.warning === undefined ? {} : { warning: answer.warning }),
  };
}
