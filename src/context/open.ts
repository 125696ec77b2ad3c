import { defaults, type RemoteConfig } from '../config/schema.js';
import { checkIndexFormat } from '../index/format.js';
import { IndexStore } from '../index/store.js';
import { isEncryptedRemote, resolveRemoteRoot } from '../remote/root.js';
import type { RemoteContext } from './remote-context.js';

// The one way the daemon and every command see a remote: root resolved, index store ready, encryption read from the root.
export async function openRemoteContext(remote: RemoteConfig, indexPath: string): Promise<RemoteContext> {
  await checkIndexFormat(indexPath);
  const realRoot = await resolveRemoteRoot(remote);
  return {
    id: remote.id,
    root: remote.root,
    realRoot,
    durationMs: remote.immutabilityDurationMs,
    index: new IndexStore(indexPath, remote.id, remote.maxIndexEntries ?? defaults.maxIndexEntries),
    encrypted: await isEncryptedRemote(remote.root),
    ...(remote.protectChains === undefined ? {} : { protectChains: remote.protectChains }),
  };
}
