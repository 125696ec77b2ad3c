import path from 'node:path';
import { yieldIfDue } from '../concurrency.js';
import type { HeldRemote } from './held.js';
import { classifyFolder, type BackupKind } from './patterns.js';
import { listFolder } from './read.js';

export interface FoundLeaf {
  kind: BackupKind;
  path: string;
}

// Every leaf folder under a held remote's root (or under one of its structural folders, given relative to the root),
// found by walking only the structural folders: one readdir each, never into a VM folder.
export async function findLeafFolders(held: HeldRemote, from = ''): Promise<FoundLeaf[]> {
  const leaves: FoundLeaf[] = [];
  const walk = async (relative: string): Promise<void> => {
    await yieldIfDue();
    for (const entry of listFolder(held, relative)) {
      if (!entry.isDirectory) continue;
      const child = relative === '' ? entry.name : `${relative}/${entry.name}`;
      const role = classifyFolder(child);
      if (role?.role === 'structure') await walk(child);
      else if (role?.role === 'leaf') leaves.push({ kind: role.kind, path: path.join(held.root, child) });
    }
  };
  await walk(from);
  return leaves;
}
