// Caps on what an attacker holding XO's credentials can make the daemon hold per remote (watched folders, index
// entries): a warning once a count reaches NEAR_CAP of its cap, an error once it reaches the cap, each logged once per
// crossing (and again after the count went back below).
export const NEAR_CAP = 0.8;

export type CapLevel = 'below' | 'near' | 'reached';

export interface CapFigures {
  count: number;
  max: number;
  level: CapLevel;
}

// Pure.
export function capLevel(count: number, max: number): CapLevel {
  if (count >= max) return 'reached';
  return count >= Math.ceil(max * NEAR_CAP) ? 'near' : 'below';
}

export type CapListener = (level: CapLevel, previous: CapLevel, count: number) => void;

// A count against its cap; the listener hears of each change of level, never of each change of count.
export class CapGauge {
  readonly max: number;
  #count = 0;
  #level: CapLevel = 'below';
  #listener: CapListener | undefined;

  constructor(max: number) {
    this.max = max;
  }

  listen(listener: CapListener): void {
    this.#listener = listener;
  }

  get count(): number {
    return this.#count;
  }

  get reached(): boolean {
    return this.#count >= this.max;
  }

  figures(): CapFigures {
    return { count: this.#count, max: this.max, level: this.#level };
  }

  set(count: number): void {
    this.#count = count;
    const level = capLevel(count, this.max);
    if (level === this.#level) return;
    const previous = this.#level;
    this.#level = level;
    this.#listener?.(level, previous, count);
  }
}
