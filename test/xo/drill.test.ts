import { readdir, rm, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DAY, startDaemon } from '../support/daemon.js';
import { allImmutable, stopBeforeCleanup, tempRemote, waitFor } from '../support/remote.js';
import type { WrittenBackup, XoRemote } from './harness.mjs';
import { missingForXo } from './requirements.js';

// The drill of issue 17: XO's code writes a chain that started before the window, someone holding XO's credentials
// then deletes, truncates and overwrites every file they can, and XO's restore is tried on every backup inside it.
const missing = missingForXo();
if (missing !== undefined && process.env.CI !== undefined) throw new Error(`XO drill: ${missing}`);
const h = missing === undefined ? await import('./harness.mjs') : undefined;

const HOUR = 3_600_000;

interface Drill {
  xo: XoRemote;
  inWindow: WrittenBackup[];
}

// A full at -30 h (outside a 1-day window) and deltas at -16 h and -2 h, written by XO while the daemon runs.
async function writtenChain(kind: 'vhd-directory' | 'encrypted', protectChains: boolean): Promise<Drill> {
  const remote = await tempRemote();
  await startDaemon(remote, {
    config: {
      jsonSettleMs: 1_000,
      protectChains,
      remotes: [{ id: 'r', root: remote.root, immutabilityDurationMs: DAY, rebuildIndexOnStart: false }],
    },
  });
  const xo = await h!.openRemote({
    root: remote.root,
    useVhdDirectory: true,
    retryEperm: false,
    ...(kind === 'encrypted' ? { encryptionKey: 'xo-drill-suite-key-32-characters' } : {}),
  });
  stopBeforeCleanup(() => xo.close());
  const vm = h!.makeVm({ disks: [8 * h!.MiB] });
  const now = Date.now();
  const backups = await h!.writeChain(xo, vm, [now - 30 * HOUR, now - 16 * HOUR, now - 2 * HOUR]);
  const inWindow = backups.slice(1);
  const own = inWindow.flatMap((b) => [b.metadataPath, ...b.disks.map((d) => d.path)]);
  await waitFor(
    () => allImmutable(own.map((p) => path.join(remote.root, p))),
    'the backups in the window to be locked',
  );
  return { xo, inWindow };
}

// Everything not immutable under the VM folders is deleted, truncated or overwritten; what refuses stays.
async function attack(root: string): Promise<void> {
  const walk = async (folder: string): Promise<void> => {
    for (const entry of await readdir(folder, { withFileTypes: true }).catch(() => [])) {
      const file = path.join(folder, entry.name);
      if (entry.isDirectory()) {
        await walk(file);
        await rm(file, { recursive: true }).catch(() => undefined);
        continue;
      }
      await writeFile(file, 'encrypted by ransomware').catch(() => undefined);
      await truncate(file, 0).catch(() => undefined);
      await rm(file).catch(() => undefined);
    }
  };
  await walk(path.join(root, 'xo-vm-backups'));
}

async function restorable(drill: Drill): Promise<number> {
  let restored = 0;
  for (const backup of drill.inWindow) {
    const mismatches = await h!.restoreMismatches(drill.xo, backup).catch((error: Error) => [error.message]);
    if (mismatches.length === 0) restored++;
  }
  return restored;
}

describe.skipIf(h === undefined)('the drill: XO restores every backup inside its window after an attack', () => {
  it.each(['vhd-directory', 'encrypted'] as const)('%s remote, chains protected (the default)', async (kind) => {
    const drill = await writtenChain(kind, true);
    await attack(drill.xo.root);
    const restored = await restorable(drill);
    console.log(`xo-drill ${kind}: ${restored}/${drill.inWindow.length} backups inside the window restorable by XO`);
    expect(restored).toBe(drill.inWindow.length);
  });

  it('vhd-directory remote, protectChains false: the expired full is deleted and no delta restores', async () => {
    const drill = await writtenChain('vhd-directory', false);
    await attack(drill.xo.root);
    const restored = await restorable(drill);
    console.log(
      `xo-drill vhd-directory, protectChains false: ${restored}/${drill.inWindow.length} backups inside the window restorable by XO`,
    );
    expect(restored).toBe(0);
  });
});
