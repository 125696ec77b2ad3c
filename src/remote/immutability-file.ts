import path from 'node:path';
import type { AttributesAdapter, Within } from '../attributes/adapter.js';
import { writeFileAtomic } from '../atomic.js';

export const IMMUTABILITY_FILE = 'immutability.json';

export interface ImmutabilityStatus {
  since: number;
  immutable: boolean;
  duration: number;
  version: string;
  daemon: 'xo-immutable-backups';
}

// XO shows a padlock on a remote with this file at its root; the prior art's fields are kept so XO reads it the same.
export function immutabilityStatus(durationMs: number, now: number, version: string): ImmutabilityStatus {
  return { since: now, immutable: true, duration: durationMs, version, daemon: 'xo-immutable-backups' };
}

// Rewritten at every start and locked, so a client of the remote cannot remove the padlock or change what it says.
// Left unlocked only when a remote is made mutable for good.
export async function writeImmutabilityFile(
  remote: Within,
  status: ImmutabilityStatus,
  attributes: AttributesAdapter,
  options = { lock: true },
): Promise<void> {
  const target = path.join(remote.root, IMMUTABILITY_FILE);
  const [unlocked] = await attributes.setImmutable(remote, [{ path: target, recursive: false }], false);
  if (unlocked?.status === 'failed') throw new Error(`cannot unlock ${target} to rewrite it: ${unlocked.message}`);
  // 0644 whatever the service's umask: XO reads the file as a non-root NFS or SMB user.
  await writeFileAtomic(target, `${JSON.stringify(status, null, 2)}\n`, 0o644);
  if (!options.lock) return;
  const [locked] = await attributes.setImmutable(remote, [{ path: target, recursive: false }], true);
  if (locked?.status !== 'ok')
    throw new Error(`cannot lock ${target}: ${locked?.status === 'failed' ? locked.message : 'it vanished'}`);
}
