import type { IndexStore } from '../index/store.js';
import type { WindowStart } from '../config/schema.js';
import type { RemoteRoot } from '../remote/root.js';

// One configured remote as protect and lift see it: its root checked, its index ready to read or write.
export interface RemoteContext extends RemoteRoot {
  id: string;
  // The configured immutabilityDuration: what a user sees (immutability.json, status).
  durationMs: number;
  // How long every window lasts: the duration + its slack (remote/model.ts windowMsOf). Whatever judges whether a
  // window has ended uses this, never durationMs.
  windowMs: number;
  index: IndexStore;
  // XO encrypts this remote and there is no key file: its jsons are ciphertext, complete once unchanged for
  // jsonSettleTime. With the key file, false: `decrypt` reads it as a plain remote.
  encrypted: boolean;
  // This remote's protectChains (config/validate.ts resolves it); undefined: the top-level setting.
  protectChains?: boolean;
  // What a backup's window counts from (config windowStart; unset: "arrival", the default).
  windowStart?: WindowStart;
  // When the daemon first watched this remote (index/windows.ts); unset outside the daemon: no backup arrives now.
  watchedSince?: number;
}
