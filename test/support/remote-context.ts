import type { RemoteContext } from '../../src/context/remote-context.js';
import type { IndexStore } from '../../src/index/store.js';
import { windowMsOf } from '../../src/remote/model.js';

const DAY = 86_400_000;

// The context protect and lift are given for a plain remote at `root` (what context/open.ts builds from a config),
// for a test that calls them directly: its window follows `durationMs` as the daemon's does.
export function remoteContextOf(root: string, index: IndexStore, durationMs = 7 * DAY): RemoteContext {
  return { id: 'r', root, realRoot: root, durationMs, windowMs: windowMsOf(durationMs), index, encrypted: false };
}
