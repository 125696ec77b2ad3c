import { lstat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { RemoteContext } from '../../src/context/remote-context.js';
import type { IndexStore } from '../../src/index/store.js';
import type { LockRequest } from '../../src/protect/context.js';
import { identityOf } from '../../src/remote/identity.js';
import { windowMsOf } from '../../src/remote/model.js';

// One file `unit` at the root of a remote, and the request a reconcile would make to lock it for a backup of
// 2026-11-22 06:00 UTC: what lockUnits is tested with.
export async function oneUnitRequest(
  root: string,
  index: IndexStore,
): Promise<{ unit: string; instant: number; request: LockRequest }> {
  const context: RemoteContext = {
    id: 'r',
    root,
    realRoot: root,
    durationMs: 1,
    windowMs: windowMsOf(1),
    index,
    encrypted: false,
  };
  const unit = path.join(root, 'unit');
  await writeFile(unit, 'x');
  const instant = Date.UTC(2026, 10, 22, 6);
  const request: LockRequest = {
    remote: context,
    kind: 'vm',
    unit,
    recursive: false,
    backup: { label: unit, datetime: '20261122T060000Z', instant, completedAt: instant },
    examined: identityOf(await lstat(unit, { bigint: true })),
  };
  return { unit, instant, request };
}
