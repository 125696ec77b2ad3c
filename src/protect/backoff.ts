// How long a folder whose reconcile or lock failed waits before it is tried again, after a first failure.
export const RETRY_DELAY_MS = 10_000;

// A folder that fails again and again (a unit an attacker keeps failing, a disk error) is tried again less and less
// often, so that it cannot keep the daemon busy every 10 s forever: the delay doubles with each failure in a row, up to
// MAX_RETRY_DELAY_MS, and a success starts it again from `base`. The periodic rescan still looks at the folder meanwhile.
export const MAX_RETRY_DELAY_MS = 10 * 60_000;

export function retryDelay(failuresInARow: number, base: number): number {
  if (failuresInARow <= 1) return base;
  return Math.min(MAX_RETRY_DELAY_MS, base * 2 ** Math.min(failuresInARow - 1, 30));
}
