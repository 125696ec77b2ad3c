// Time is an input: everything that decides by age takes a Clock, so tests move time by changing a number.
export interface Clock {
  // Wall-clock time, epoch milliseconds: what backup datetimes are compared with.
  now(): number;
  // A clock nobody can set (milliseconds since some start): what the wall clock's moves are checked against.
  // Clocks without one (most tests) are not guarded.
  monotonic?(): number;
}

export const systemClock: Clock = { now: () => Date.now(), monotonic: () => performance.now() };
