import type { AttributesAdapter } from '../attributes/adapter.js';
import type { RemoteContext } from '../context/remote-context.js';
import { immutabilityStatus, writeImmutabilityFile } from '../remote/immutability-file.js';
import { VERSION } from '../version.js';
import { liftRemote } from './apply.js';
import { type LiftReport } from './report.js';

// Decommissioning: everything in the remote's index is unlocked and forgotten, then anything still immutable under
// its root (units the index lost track of), and immutability.json says the remote is no longer immutable.
export async function makeRemoteMutable(
  remote: RemoteContext,
  attributes: AttributesAdapter,
  now: number,
  onProgress?: (done: number, total: number) => void,
): Promise<LiftReport> {
  const report = await liftRemote(remote, attributes, {
    now,
    dryRun: false,
    all: true,
    onProgress,
  });
  // An unmounted remote: nothing was done, and nothing must be written onto the folder underneath.
  if (report.failed.some((f) => f.path === remote.root)) return report;
  const [sweep] = await attributes.setImmutable(remote, [{ path: remote.root, recursive: true }], false);
  if (sweep?.status === 'failed') {
    report.failed.push({
      path: remote.root,
      message: `some files under the root are still immutable: ${sweep.message}`,
    });
    return report;
  }
  // No daemon will unlink what the index forgot for a remote that is no longer protected (index/freed.ts).
  await remote.index.freed.reclaim(
    (work) => work(),
    () => false,
  );
  const { planted } = await writeImmutabilityFile(
    remote,
    { ...immutabilityStatus(remote.durationMs, now, VERSION), immutable: false },
    attributes,
    { lock: false },
  );
  // Named as lift names anything it would not act on; moved aside as the daemon does (remote/immutability-file.ts).
  if (planted !== undefined)
    report.suspicious.push({ path: planted.path, reason: `it was ${planted.found}: moved to ${planted.movedTo}` });
  return report;
}
