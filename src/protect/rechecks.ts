import type { Clock } from '../clock.js';
import type { LeafFolder } from './context.js';

// setTimeout fires at once for delays past 2^31-1 ms (24.8 days); a later recheck just comes early and re-arms.
export const MAX_TIMER_MS = 2 ** 31 - 1;

// At most one timer per folder for a later look; the earliest request wins, and a full one stays full.
export class RecheckTimers {
  readonly #timers = new Map<string, { at: number; timer: NodeJS.Timeout; full: boolean }>();
  readonly #clock: Clock;
  readonly #fire: (folder: LeafFolder, full: boolean) => void;

  constructor(clock: Clock, fire: (folder: LeafFolder, full: boolean) => void) {
    this.#clock = clock;
    this.#fire = fire;
  }

  get size(): number {
    return this.#timers.size;
  }

  schedule(folder: LeafFolder, at: number, full: boolean): void {
    const existing = this.#timers.get(folder.path);
    if (existing !== undefined && existing.at <= at && (existing.full || !full)) return;
    if (existing !== undefined) clearTimeout(existing.timer);
    const wantFull = full || (existing?.full ?? false);
    const earliest = Math.min(at, existing?.at ?? at);
    const timer = setTimeout(
      () => {
        this.#timers.delete(folder.path);
        this.#fire(folder, wantFull);
      },
      Math.min(MAX_TIMER_MS, Math.max(0, earliest - this.#clock.now())),
    );
    timer.unref();
    this.#timers.set(folder.path, { at: earliest, timer, full: wantFull });
  }

  // A look at the folder has just seen what a recheck was armed for (a json since completed, a failure since tried
  // again): the recheck goes, unless it was to look at every backup and this look did not.
  supersede(folderPath: string, full: boolean): void {
    if (full || this.#timers.get(folderPath)?.full === false) this.cancel(folderPath);
  }

  cancel(folderPath: string): void {
    const existing = this.#timers.get(folderPath);
    if (existing !== undefined) clearTimeout(existing.timer);
    this.#timers.delete(folderPath);
  }

  clear(): void {
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }
}
