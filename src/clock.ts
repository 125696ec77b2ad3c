import { readFileSync } from 'node:fs';

// Time is an input: everything that decides by age takes a Clock, so tests move time by changing a number.
export interface Clock {
  // Wall-clock time, epoch milliseconds: what backup datetimes are compared with.
  now(): number;
  // A clock nobody can set (milliseconds since some start): what the wall clock's moves are checked against.
  // Clocks without one (most tests) are not guarded.
  monotonic?(): number;
  // The boot monotonic() counts from: two processes that read the same id read the same monotonic clock, so a restart
  // in that boot is judged like a running daemon. Clocks without one are judged across restarts as after a reboot.
  bootId?(): string | undefined;
}

// CLOCK_MONOTONIC (libuv's hrtime) counts from boot and is the same in every process of that boot, unlike
// performance.now(), which counts from this process's start.
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => Number(process.hrtime.bigint()) / 1e6,
  bootId: readBootId,
};

function readBootId(): string | undefined {
  try {
    const id = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    return id === '' ? undefined : id;
  } catch {
    return undefined;
  }
}
