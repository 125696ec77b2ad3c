import { MAX_TIMER_MS } from '../protect/scheduler.js';

// A timer owned by one service: one run at a time, errors handed to `onError`, and stop() waits for the run in flight.
export class Periodic {
  readonly #everyMs: number;
  readonly #work: () => Promise<void>;
  readonly #onError: (err: unknown) => void;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(everyMs: number, work: () => Promise<void>, onError: (err: unknown) => void) {
    this.#everyMs = everyMs;
    this.#work = work;
    this.#onError = onError;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  // Arms the timer, unless stop() came first (a SIGTERM during start-up): a timer armed after it keeps the process up.
  arm(): void {
    if (this.#stopped || this.#timer !== undefined) return;
    this.#timer = setInterval(() => void this.runNow(), Math.min(MAX_TIMER_MS, this.#everyMs));
  }

  runNow(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    this.#running ??= this.#work()
      .catch(this.#onError)
      .finally(() => {
        this.#running = undefined;
      });
    return this.#running;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }
}
