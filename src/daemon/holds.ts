import path from 'node:path';
import type { Clock } from '../clock.js';
import type { TakeTurns } from '../concurrency.js';
import type { RemoteContext } from '../context/remote-context.js';
import { reviewHolds, type Hold } from '../holds/rules.js';
import type { Logger } from '../log/logger.js';
import { MAX_TIMER_MS } from '../protect/scheduler.js';
import { Periodic } from './periodic.js';
import type { ProtectionService } from './protection.js';
import type { RemoteSet } from './remotes.js';
import type { Service } from './service.js';

// Often enough that a repair lift waits a moment for its acknowledgement; a listing of a folder of a few files.
export const HOLD_CHECK_MS = 1_000;

export interface HoldDeps {
  remotes: RemoteSet;
  protection: ProtectionService;
  turns: TakeTurns;
  clock: Clock;
  log: Logger;
  everyMs?: number;
}

// Repair lifts (hold start): acknowledges each new hold between two lock batches, so that the command may unlock
// with nothing in flight that would lock the VM again, and has the VM reconciled (locked again) when its hold ends,
// at its end or when it is ended early. Reconciles and lock batches read the holds themselves; this keeps the timers.
export class HoldService implements Service {
  readonly name = 'holds';
  readonly #deps: HoldDeps;
  readonly #periodic: Periodic;
  readonly #held = new Map<RemoteContext, Map<string, Hold>>();
  #endTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  // Holds acknowledged or ended since start: each is a security warning.
  events = 0;

  constructor(deps: HoldDeps) {
    this.#deps = deps;
    this.#periodic = new Periodic(
      deps.everyMs ?? HOLD_CHECK_MS,
      () => this.#check(),
      (err: unknown) => deps.log.error({ err }, 'could not read the holds of repair lifts; tried again in a moment'),
    );
  }

  // The holds on now, per remote, soonest end first.
  holds(remote: RemoteContext): Hold[] {
    return [...(this.#held.get(remote)?.values() ?? [])].sort((a, b) => a.until.localeCompare(b.until));
  }

  async start(): Promise<void> {
    await this.#periodic.runNow();
    for (const remote of this.#deps.remotes.list)
      for (const hold of this.holds(remote)) this.#warn(remote, hold, 'is still held');
    this.#periodic.arm();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#endTimer);
    await this.#periodic.stop();
  }

  async #check(): Promise<void> {
    const now = this.#deps.clock.now();
    for (const remote of this.#deps.remotes.list) {
      if (this.#stopped) return;
      const { holds } = remote.index;
      const known = this.#held.get(remote) ?? new Map<string, Hold>();
      const review = reviewHolds(holds.list(), (vm) => holds.seenId(vm), known, now);
      for (const hold of review.acknowledge) await this.#acknowledge(remote, hold);
      for (const hold of review.expired) {
        holds.remove(hold.vm);
        this.#end(remote, hold, 'has ended');
      }
      for (const hold of review.endedEarly) this.#end(remote, hold, 'was ended early');
      this.#held.set(remote, review.active);
    }
    this.#armEndTimer(now);
  }

  // In its turn: the lock batch in flight (if any) is over, and every later one reads this hold before it locks.
  async #acknowledge(remote: RemoteContext, hold: Hold): Promise<void> {
    await this.#deps.turns.run(() => remote.index.holds.markSeen(hold));
    this.#warn(remote, hold, 'is held by a repair lift');
  }

  #warn(remote: RemoteContext, hold: Hold, what: string): void {
    this.events++;
    this.#deps.log.warn(
      {
        remote: remote.id,
        vm: hold.vm,
        until: hold.until,
        since: hold.since,
        by: hold.by,
        reason: hold.reason,
        backup: hold.backup,
        security: true,
      },
      `VM ${hold.vm} of remote ${remote.id} ${what} until ${hold.until} (by ${hold.by}): ` +
        'its backups, new ones included, are not locked until then',
    );
  }

  // The VM's folder reconciled now, every backup looked at: what is inside its window is locked again.
  #end(remote: RemoteContext, hold: Hold, what: string): void {
    this.events++;
    this.#deps.log.warn(
      { remote: remote.id, vm: hold.vm, until: hold.until, by: hold.by, security: true },
      `the hold on VM ${hold.vm} of remote ${remote.id} ${what}: locking its backups again`,
    );
    const folder = { remote, kind: 'vm' as const, path: path.join(remote.root, 'xo-vm-backups', hold.vm) };
    this.#deps.protection.enqueue(folder, 'event');
    this.#deps.protection.enqueue(folder, 'scan');
  }

  // A check at the soonest end, so that a hold ends on time whatever the period.
  #armEndTimer(now: number): void {
    clearTimeout(this.#endTimer);
    this.#endTimer = undefined;
    if (this.#stopped) return;
    const ends = [...this.#held.values()].flatMap((holds) => [...holds.values()].map((h) => Date.parse(h.until)));
    if (ends.length === 0) return;
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, Math.min(...ends) - now));
    this.#endTimer = setTimeout(() => void this.#periodic.runNow(), delay);
    this.#endTimer.unref();
  }
}
