import path from 'node:path';
import { yieldIfDue } from '../concurrency.js';
import type { HeldRemote } from './held.js';
import { classifyFolder, type BackupKind, type FolderRole, type StructuralFolder } from './patterns.js';
import { listHeld } from './read.js';

export interface FoundLeaf {
  kind: BackupKind;
  path: string;
  // A symbolic link where XO writes a folder (a leaf or a structural one): XO follows it, the daemon never does.
  linked?: true;
}

// Every leaf folder under a held remote's root (or under one of its structural folders, given relative to the root),
// found by walking only the structural folders: one readdir each, never into a VM folder. A symbolic link where XO
// writes a folder is never entered: given, `linked` collects each, with the kind of backups XO would write behind it.
export async function findLeafFolders(held: HeldRemote, from = '', linked?: FoundLeaf[]): Promise<FoundLeaf[]> {
  const leaves: FoundLeaf[] = [];
  const walk = async (relative: string): Promise<void> => {
    await yieldIfDue();
    for (const entry of listHeld(held, relative)) {
      if (!entry.isDirectory && !entry.isSymlink) continue;
      const child = relative === '' ? entry.name : `${relative}/${entry.name}`;
      const role = classifyFolder(child);
      const at = path.join(held.root, child);
      if (role === undefined || (role.role === 'structure' && role.kind === 'root')) continue;
      if (entry.isSymlink) linked?.push({ kind: kindOfFolder(role), path: at, linked: true });
      else if (role.role === 'structure') await walk(child);
      else leaves.push({ kind: role.kind, path: at });
    }
  };
  await walk(from);
  return leaves;
}

// The kind of backups in a leaf folder, or under a structural one.
export function kindOfFolder(role: FolderRole): BackupKind {
  return role.role === 'leaf' ? role.kind : TREE_KIND[role.kind];
}

const TREE_KIND: Record<StructuralFolder, BackupKind> = {
  root: 'vm',
  vmTree: 'vm',
  configTree: 'config',
  configSchedule: 'config',
  poolTree: 'pool',
  poolSchedule: 'pool',
  poolOfSchedule: 'pool',
};
