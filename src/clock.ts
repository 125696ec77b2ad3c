// Time is an input: everything that decides by age takes a Clock, so tests move time by changing a number.
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
