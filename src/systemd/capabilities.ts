import { REQUIRED_CAPABILITIES } from '../attributes/capability.js';
import { AppError } from '../errors.js';
import { splitWords, type ParsedUnit } from './unit-file.js';

// A bounding set: only some capabilities, or all but some.
export type BoundingSet = { only: ReadonlySet<string> } | { except: ReadonlySet<string> };

// The bounding set a unit leaves root, as systemd builds it from CapabilityBoundingSet= (systemd.exec(5),
// config_parse_capability_set): a line replaces the set when it names no capability ("" empties it, "~" alone fills
// it) or when the set is still unset; otherwise it adds to it, or with "~" takes away. undefined: never set (all).
export function boundingSetOf(unit: ParsedUnit): BoundingSet | undefined {
  let set: BoundingSet | undefined;
  for (const a of unit.assignments) {
    if (a.section !== 'Service' || a.key !== 'CapabilityBoundingSet') continue;
    const value = a.value.trim();
    const invert = value.startsWith('~');
    const sum = new Set(splitWords(invert ? value.slice(1) : value).flatMap(capabilityName));
    const replaces = set === undefined || sum.size === 0 || isAll(set);
    set = replaces ? (invert ? { except: sum } : { only: sum }) : merged(set!, sum, invert);
  }
  return set;
}

// Every capability ("~" alone, as when unset) is systemd's initial value, which a line replaces.
function isAll(set: BoundingSet): boolean {
  return 'except' in set && set.except.size === 0;
}

function merged(set: BoundingSet, sum: ReadonlySet<string>, invert: boolean): BoundingSet {
  if ('only' in set) return { only: invert ? minus(set.only, sum) : new Set([...set.only, ...sum]) };
  return { except: invert ? new Set([...set.except, ...sum]) : minus(set.except, sum) };
}

export function keeps(set: BoundingSet | undefined, name: string): boolean {
  if (set === undefined) return true;
  return 'only' in set ? set.only.has(name) : !set.except.has(name);
}

function minus(from: ReadonlySet<string>, taken: ReadonlySet<string>): Set<string> {
  return new Set([...from].filter((c) => !taken.has(c)));
}

// A name as systemd reads it (any case), or a number (linux/capability.h); anything else is ignored, as systemd does.
function capabilityName(word: string): string[] {
  if (/^[0-9]+$/.test(word)) return [NUMBERED.get(Number(word)) ?? `CAP_${word}`];
  const name = word.toUpperCase();
  return name.startsWith('CAP_') ? [name] : [];
}

const NUMBERED = new Map<number, string>([
  [0, 'CAP_CHOWN'],
  ...REQUIRED_CAPABILITIES.map((c): [number, string] => [c.bit, c.name]),
]);

// What `check` says of the unit's bounding set: a failure without a capability the daemon needs to start; a warning
// without CAP_CHOWN, which only the empty folder in place of a planted link needs (a unit installed before it).
export function judgeBoundingSet(set: BoundingSet | undefined): string {
  if (set === undefined) return 'CapabilityBoundingSet= is not set: root keeps every capability';
  const missing = REQUIRED_CAPABILITIES.map((c) => c.name).filter((c) => !keeps(set, c));
  if (missing.length > 0)
    throw new AppError('USAGE', `CapabilityBoundingSet= leaves out ${missing.join(', ')}: the daemon cannot start`, {
      value: 'only' in set ? [...set.only].join(' ') || '(none)' : `all but ${[...set.except].join(' ')}`,
      hint: 'run `xo-immutable-backups install-unit` again, and keep those in any drop-in',
    });
  if (!keeps(set, 'CAP_CHOWN'))
    return (
      'WARNING: CapabilityBoundingSet= leaves out CAP_CHOWN: a link planted where XO writes a folder, which may not ' +
      'be put back, is left and said instead of replaced by an empty folder for XO (a unit from before 0.1.0?); ' +
      'run `xo-immutable-backups install-unit` again'
    );
  return `keeps ${[...REQUIRED_CAPABILITIES.map((c) => c.name), 'CAP_CHOWN'].join(', ')}`;
}
