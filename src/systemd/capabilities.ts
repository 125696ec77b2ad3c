import { REQUIRED_CAPABILITIES } from '../attributes/capability.js';
import { AppError } from '../errors.js';
import { splitWords, type ParsedUnit } from './unit-file.js';

// The bounding set a unit leaves root, as systemd builds it from CapabilityBoundingSet= (systemd.exec(5)): lines add
// up, a line starting with "~" takes its capabilities away, an empty one empties the set. undefined: never set (all).
export function boundingSetOf(unit: ParsedUnit): Set<string> | undefined {
  let set: Set<string> | undefined;
  for (const a of unit.assignments) {
    if (a.section !== 'Service' || a.key !== 'CapabilityBoundingSet') continue;
    const value = a.value.trim();
    if (value === '') set = new Set();
    else if (value.startsWith('~')) {
      const dropped = new Set(splitWords(value.slice(1)).map((c) => c.toUpperCase()));
      set = new Set([...(set ?? ALL)].filter((c) => !dropped.has(c)));
    } else set = new Set([...(set ?? []), ...splitWords(value).map((c) => c.toUpperCase())]);
  }
  return set;
}

// Those the daemon names (an unset bounding set keeps them all).
const ALL = [...REQUIRED_CAPABILITIES.map((c) => c.name), 'CAP_CHOWN'];

// What `check` says of the unit's bounding set: a failure without a capability the daemon needs to start; a warning
// without CAP_CHOWN, which only the empty folder in place of a planted link needs (a unit installed before it).
export function judgeBoundingSet(set: Set<string> | undefined): string {
  if (set === undefined) return 'CapabilityBoundingSet= is not set: root keeps every capability';
  const missing = REQUIRED_CAPABILITIES.map((c) => c.name).filter((c) => !set.has(c));
  if (missing.length > 0)
    throw new AppError('USAGE', `CapabilityBoundingSet= leaves out ${missing.join(', ')}: the daemon cannot start`, {
      value: [...set].join(' '),
      hint: 'run `xo-immutable-backups install-unit` again, and keep those in any drop-in',
    });
  if (!set.has('CAP_CHOWN'))
    return (
      'WARNING: CapabilityBoundingSet= leaves out CAP_CHOWN: a link planted where XO writes a folder, which may not ' +
      'be put back, is left and said instead of replaced by an empty folder for XO (a unit from before 0.1.0?); ' +
      'run `xo-immutable-backups install-unit` again'
    );
  return `keeps ${ALL.join(', ')}`;
}
