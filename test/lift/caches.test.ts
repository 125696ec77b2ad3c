import { existsSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RemoteContext } from '../../src/context/remote-context.js';
import { removeVmCaches } from '../../src/lift/caches.js';
import type { LiftCandidate } from '../../src/lift/plan.js';
import { tempRemote } from '../support/remote.js';

describe("removing XO's metadata caches after a lift", () => {
  it('never removes one reached through a VM folder swapped for a symlink', async () => {
    const remote = await tempRemote();
    const outside = path.join(remote.base, 'outside');
    await mkdir(outside);
    await writeFile(path.join(outside, 'cache.json.gz'), 'not the remote');
    const tree = path.join(remote.root, 'xo-vm-backups');
    await mkdir(path.join(tree, 'real'), { recursive: true });
    await writeFile(path.join(tree, 'real', 'cache.json.gz'), 'cache');
    await symlink(outside, path.join(tree, 'swapped'));
    const context = { id: 'r', root: remote.root, realRoot: remote.root } as RemoteContext;
    const unlocked = ['real', 'swapped'].map((vm) => ({ kind: 'vm', path: path.join(tree, vm, 'x.json') }));

    const removed = await removeVmCaches(context, unlocked as LiftCandidate[], []);

    expect(removed).toEqual([path.join(tree, 'real', 'cache.json.gz')]);
    expect(existsSync(path.join(outside, 'cache.json.gz'))).toBe(true);
  });
});
