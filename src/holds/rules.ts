import path from 'node:path';
import { parseDuration } from '../config/duration.js';
import { AppError } from '../errors.js';

// Pure: what a hold is and the rules about it. The files are kept by store.ts; the daemon's timers by
// daemon/holds.ts; the command by cli/hold.ts; the unlock of a repair lift by lift/vm.ts.

// A VM folder's name as XO writes it: a hold is kept in a file named after it, so nothing else is accepted.
export const VM_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// A hold ends on its own: a day unless said otherwise, a week at most, so protection is never forgotten off.
export const DEFAULT_HOLD = '1d';
export const MAX_HOLD_MS = 7 * 86_400_000;

// A repair lift: the daemon leaves one VM's backups unlocked until `until`, then locks them again.
export interface Hold {
  version: 1;
  remote: string;
  vm: string;
  // ISO instants: when the repair lift was made, when the hold ends.
  since: string;
  until: string;
  // Who ran it (SUDO_USER, or the user), and why, as the admin said.
  by: string;
  reason?: string;
  // The backup the lift was for (its datetime), when only one backup and its chain were unlocked.
  backup?: string;
  // Names this hold: the daemon acknowledges it by id (`seen`), so a hold written again is acknowledged again.
  id: string;
}

// A hold file's text, checked field by field; undefined when it is not a hold on `vm`.
export function parseHold(text: string, vm: string): Hold | undefined {
  try {
    const value = JSON.parse(text) as Partial<Hold>;
    const strings = [value.vm, value.remote, value.id, value.by, value.since, value.until];
    if (
      value.version !== 1 ||
      strings.some((s) => typeof s !== 'string') ||
      value.vm!.toLowerCase() !== vm.toLowerCase() ||
      Number.isNaN(Date.parse(value.until!)) ||
      Number.isNaN(Date.parse(value.since!))
    )
      return undefined;
    return value as Hold;
  } catch {
    return undefined;
  }
}

// A new hold on `vm` from `since` (an instant) for `ms`.
export function newHold(options: {
  remote: string;
  vm: string;
  since: number;
  ms: number;
  by: string;
  id: string;
  reason?: string | undefined;
  backup?: string | undefined;
}): Hold {
  const { remote, vm, since, ms, by, id, reason, backup } = options;
  return {
    version: 1,
    remote,
    vm,
    since: new Date(since).toISOString(),
    until: new Date(since + ms).toISOString(),
    by,
    ...(reason === undefined ? {} : { reason }),
    ...(backup === undefined ? {} : { backup }),
    id,
  };
}

// The end of a hold when it is still on at `now`.
export function heldUntil(hold: Hold | undefined, now: number): number | undefined {
  const until = hold === undefined ? Number.NaN : Date.parse(hold.until);
  return until > now ? until : undefined;
}

// A VM uuid as typed by an admin, lower-cased as XO names its folder.
export function parseVm(vm: string): string {
  if (VM_UUID.test(vm)) return vm.toLowerCase();
  throw new AppError('USAGE', `--vm ${JSON.stringify(vm)} is not a VM uuid`, {
    value: vm,
    hint: 'give the uuid of the VM, as in the folder name xo-vm-backups/<uuid> on the remote',
  });
}

// The length of a hold asked for, within its bounds.
export function parseHoldDuration(text: string | undefined, option = '--for'): number {
  const ms = parseDuration(text ?? DEFAULT_HOLD);
  if (ms !== undefined && ms <= MAX_HOLD_MS) return ms;
  throw new AppError('USAGE', `${option} ${JSON.stringify(text)} is not a duration of at most 7 days`, {
    value: text,
    hint: `write it as 30m, 12h or 2d (the default is ${DEFAULT_HOLD}, the most 7d); end a hold early with hold end`,
  });
}

// The VM a path under the remote belongs to (xo-vm-backups/<vm>/...), or undefined.
export function vmOfPath(root: string, unitPath: string): string | undefined {
  const [tree, vm] = path.relative(root, unitPath).split(path.sep);
  return tree === 'xo-vm-backups' && vm !== undefined && VM_UUID.test(vm) ? vm : undefined;
}

// What the daemon does about one remote's holds at `now`, given the holds on file, the ids it acknowledged and the
// holds it knew on at its last look.
export interface HoldReview {
  // On now, by VM.
  active: Map<string, Hold>;
  // New, or written again: acknowledge each (between two lock batches).
  acknowledge: Hold[];
  // Past their end: remove their files and lock the VM again.
  expired: Hold[];
  // Removed before their end (hold end): lock the VM again.
  endedEarly: Hold[];
}

export function reviewHolds(
  onFile: readonly Hold[],
  seenId: (vm: string) => string | undefined,
  known: ReadonlyMap<string, Hold>,
  now: number,
): HoldReview {
  const review: HoldReview = { active: new Map(), acknowledge: [], expired: [], endedEarly: [] };
  for (const hold of onFile) {
    if (heldUntil(hold, now) === undefined) {
      review.expired.push(hold);
      continue;
    }
    review.active.set(hold.vm, hold);
    if (seenId(hold.vm) !== hold.id) review.acknowledge.push(hold);
  }
  for (const [vm, hold] of known)
    if (!review.active.has(vm) && heldUntil(hold, now) !== undefined) review.endedEarly.push(hold);
  return review;
}

// A hold as `status --json` (remotes[].holds), `hold list --json` and `hold start --json` print it.
export interface HeldVm {
  vm: string;
  until: string;
  since: string;
  by: string;
  reason: string | null;
  backup: string | null;
}

export function holdJson(hold: Hold): HeldVm {
  return {
    vm: hold.vm,
    until: hold.until,
    since: hold.since,
    by: hold.by,
    reason: hold.reason ?? null,
    backup: hold.backup ?? null,
  };
}
