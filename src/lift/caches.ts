import { unlinkSync } from 'node:fs';
import path from 'node:path';
import { yieldIfDue } from '../concurrency.js';
import type { RemoteContext } from '../context/remote-context.js';
import { errnoCode } from '../errors.js';
import { inHeldFolder } from '../remote/confine.js';
import type { LiftReport } from './apply.js';
import type { LiftCandidate } from './plan.js';

// XO caches a VM folder's metadata in cache.json.gz; after a lift it must re-read it, so the cache goes.
export async function removeVmCaches(
  remote: RemoteContext,
  unlocked: readonly LiftCandidate[],
  failed: LiftReport['failed'],
): Promise<string[]> {
  const removed: string[] = [];
  for (const folder of vmFoldersOf(remote.root, unlocked)) {
    const cache = path.join(folder, 'cache.json.gz');
    try {
      await yieldIfDue();
      // Removed from the VM folder reached without following a link: a folder swapped for one is left alone.
      const done = inHeldFolder(remote, folder, (held) => {
        unlinkSync(path.join(held, 'cache.json.gz'));
        return true;
      });
      if (done === undefined)
        failed.push({ path: cache, message: `not removed: ${folder} is not a real folder of the remote (a link?)` });
      else removed.push(cache);
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT')
        failed.push({ path: cache, message: `could not remove XO's metadata cache: ${(error as Error).message}` });
    }
  }
  return removed;
}

function vmFoldersOf(root: string, unlocked: readonly LiftCandidate[]): Set<string> {
  const folders = new Set<string>();
  for (const unit of unlocked) {
    if (unit.kind !== 'vm') continue;
    const [tree, vm] = path.relative(root, unit.path).split(path.sep);
    if (tree === 'xo-vm-backups' && vm !== undefined) folders.add(path.join(root, tree, vm));
  }
  return folders;
}
