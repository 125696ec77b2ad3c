import { existsSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RemoteContext } from '../../src/context/remote-context.js';
import type { LiftReport } from '../../src/lift/apply.js';
import { removeVmCaches } from '../../src/lift/caches.js';
import type { LiftCandidate } from '../../src/lift/plan.js';
import { tempFolder, tempRemote } from '../support/remote.js';

function unlockedIn(vmFolder: string): LiftCandidate {
  return {
    path: path.join(vmFolder, '20261122T061500Z.json'),
    kind: 'vm',
    recursive: false,
    governingInstant: 0,
    day: '2026-11-22',
    entries: [],
    identity: undefined,
    backup: path.join(vmFolder, '20261122T061500Z.json'),
  };
}

describe("removing XO's metadata caches after a lift", () => {
  it('removes the cache of a real VM folder, and none through a VM folder swapped for a link', async () => {
    const { root } = await tempRemote();
    const remote = { id: 'r', root, realRoot: root } as RemoteContext;
    const outside = await tempFolder('xo-immutable-outside-');
    await writeFile(path.join(outside, 'cache.json.gz'), 'precious');
    const real = path.join(root, 'xo-vm-backups', 'real');
    await mkdir(real, { recursive: true });
    await writeFile(path.join(real, 'cache.json.gz'), 'cache');
    const swapped = path.join(root, 'xo-vm-backups', 'swapped');
    await symlink(outside, swapped);
    const failed: LiftReport['failed'] = [];

    const removed = await removeVmCaches(remote, [unlockedIn(real), unlockedIn(swapped)], failed);

    expect(removed).toEqual([path.join(real, 'cache.json.gz')]);
    expect(existsSync(path.join(real, 'cache.json.gz'))).toBe(false);
    expect(existsSync(path.join(outside, 'cache.json.gz'))).toBe(true);
    expect(failed.map((f) => f.path)).toEqual([path.join(swapped, 'cache.json.gz')]);
  });
});
