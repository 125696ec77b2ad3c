import type { IndexStore } from '../index/store.js';

// One configured remote as protect and lift see it: its root checked, its index ready to read or write.
export interface RemoteContext {
  id: string;
  root: string;
  // The root with symlinks resolved, to check that nothing we act on lies outside it.
  realRoot: string;
  durationMs: number;
  index: IndexStore;
  // XO encrypts this remote: its jsons are ciphertext, complete once unchanged for jsonSettleTime.
  encrypted: boolean;
}
