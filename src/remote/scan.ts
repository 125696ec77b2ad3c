import path from 'node:path';
import { classifyFolder, type BackupKind } from './patterns.js';
import { listFolder } from './read.js';

export interface FoundLeaf {
  kind: BackupKind;
  path: string;
}

// Every leaf folder under a root (or under one of its structural folders, given relative to the root),
// found by walking only the structural folders: one readdir each, never into a VM folder.
export async function findLeafFolders(root: string, from = ''): Promise<FoundLeaf[]> {
  const leaves: FoundLeaf[] = [];
  const walk = async (relative: string): Promise<void> => {
    for (const entry of await listFolder(path.join(root, relative))) {
      if (!entry.isDirectory) continue;
      const child = relative === '' ? entry.name : `${relative}/${entry.name}`;
      const role = classifyFolder(child);
      if (role?.role === 'structure') await walk(child);
      else if (role?.role === 'leaf') leaves.push({ kind: role.kind, path: path.join(root, child) });
    }
  };
  await walk(from);
  return leaves;
}
