import { defaults, type RemoteConfig } from '../config/schema.js';
import { checkIndexFormat } from '../index/format.js';
import { IndexStore } from '../index/store.js';
import { windowMsOf } from '../remote/model.js';
import { readingOf } from '../remote/encryption.js';
import { resolveRemoteRoot } from '../remote/root.js';
import type { RemoteContext } from './remote-context.js';

// The one way the daemon and every command see a remote: root resolved, index store ready, encryption read from the
// root (and with its key file, checked against XO's canary).
export async function openRemoteContext(remote: RemoteConfig, indexPath: string): Promise<RemoteContext> {
  await checkIndexFormat(indexPath);
  const realRoot = await resolveRemoteRoot(remote);
  return {
    id: remote.id,
    root: remote.root,
    realRoot,
    durationMs: remote.immutabilityDurationMs,
    windowMs: windowMsOf(remote.immutabilityDurationMs),
    windowStart: remote.windowStart,
    index: new IndexStore(indexPath, remote.id, remote.maxIndexEntries ?? defaults.maxIndexEntries),
    ...(await readingOf(remote, { root: remote.root, realRoot })),
    ...(remote.protectChains === undefined ? {} : { protectChains: remote.protectChains }),
  };
}
