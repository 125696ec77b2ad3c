// One file of a unit as systemd reads it: the unit file first, then its drop-ins in order.
export interface UnitSource {
  path: string;
  text: string;
}

export interface Assignment {
  section: string;
  key: string;
  value: string;
  source: string;
}

// Every assignment of a unit and its drop-ins, in the order systemd applies them: a later one overrides a setting, or
// adds to a list (an empty one resets the list).
export interface ParsedUnit {
  sources: string[];
  assignments: Assignment[];
}

// Unit file syntax (systemd.syntax(7)): [Section] headers, Key=Value lines, '#' and ';' comments, a trailing '\'
// continuing the line. Pure: the caller reads the files.
export function parseUnit(sources: readonly UnitSource[]): ParsedUnit {
  const assignments: Assignment[] = [];
  for (const source of sources) {
    let section = '';
    const lines = source.text.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      let line = lines[i]!.trim();
      if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
      while (line.endsWith('\\') && i + 1 < lines.length) {
        const next = lines[++i]!.trim();
        // Comment lines inside a continuation are skipped, as systemd does.
        if (next.startsWith('#') || next.startsWith(';')) continue;
        line = `${line.slice(0, -1)} ${next}`;
      }
      if (line.endsWith('\\')) line = line.slice(0, -1);
      const header = /^\[([^\]]+)\]$/.exec(line);
      if (header) {
        section = header[1]!;
        continue;
      }
      const equals = line.indexOf('=');
      if (equals <= 0) continue;
      assignments.push({
        section,
        key: line.slice(0, equals).trim(),
        value: line.slice(equals + 1).trim(),
        source: source.path,
      });
    }
  }
  return { sources: sources.map((s) => s.path), assignments };
}

// A single-valued setting: the last assignment wins; an empty one sets it back to its default (undefined).
export function lastValue(unit: ParsedUnit, section: string, keys: readonly string[]): string | undefined {
  let value: string | undefined;
  for (const a of unit.assignments) if (a.section === section && keys.includes(a.key)) value = a.value;
  return value === '' ? undefined : value;
}

// A list setting: each assignment adds its space-separated words; an empty assignment empties the list.
export function listValue(
  unit: ParsedUnit,
  section: string,
  keys: readonly string[],
): { word: string; source: string }[] {
  let words: { word: string; source: string }[] = [];
  for (const a of unit.assignments) {
    if (a.section !== section || !keys.includes(a.key)) continue;
    if (a.value === '') words = [];
    else words.push(...splitWords(a.value).map((word) => ({ word, source: a.source })));
  }
  return words;
}

// Words separated by spaces; "double" or 'single' quotes keep spaces inside one word, a backslash escapes.
export function splitWords(value: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let quote: string | undefined;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '\\' && i + 1 < value.length) {
      word = (word ?? '') + value[++i]!;
    } else if (quote !== undefined) {
      if (c === quote) quote = undefined;
      else word = (word ?? '') + c;
    } else if (c === '"' || c === "'") {
      quote = c;
      word ??= '';
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else {
      word = (word ?? '') + c;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

// systemd's booleans: 1, yes, y, true, t, on are true; 0, no, n, false, f, off are false; anything else is not one.
export function parseBoolean(value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  const v = value.toLowerCase();
  if (['1', 'yes', 'y', 'true', 't', 'on'].includes(v)) return true;
  if (['0', 'no', 'n', 'false', 'f', 'off'].includes(v)) return false;
  return undefined;
}
