import micromatch from 'micromatch';
import { isDatetimeName } from './datetime.js';

// What a folder under a remote root is, judged from its path relative to the root.
// Structural folders only lead to others; leaf folders are where a completion signal appears.
export type StructuralFolder = 'root' | 'vmTree' | 'configTree' | 'configSchedule' | 'poolTree' | 'poolSchedule' | 'poolOfSchedule';
export type BackupKind = 'vm' | 'config' | 'pool';
export type FolderRole = { role: 'structure'; kind: StructuralFolder } | { role: 'leaf'; kind: BackupKind };

const options = { dot: false } as const;

const STRUCTURE: [StructuralFolder, string][] = [
  ['vmTree', 'xo-vm-backups'],
  ['configTree', 'xo-config-backups'],
  ['configSchedule', 'xo-config-backups/*'],
  ['poolTree', 'xo-pool-metadata-backups'],
  ['poolSchedule', 'xo-pool-metadata-backups/*'],
  ['poolOfSchedule', 'xo-pool-metadata-backups/*/*'],
];

// `*.lock` VM folders are XO's run locks, never backups; dot folders (.queue and temporaries) are XO's own.
const LEAVES: [BackupKind, string][] = [
  ['vm', 'xo-vm-backups/!(*.lock)'],
  ['config', 'xo-config-backups/*/*'],
  ['pool', 'xo-pool-metadata-backups/*/*/*'],
];

export function classifyFolder(relativePath: string): FolderRole | undefined {
  if (relativePath === '') return { role: 'structure', kind: 'root' };
  // Dot names are XO's temporaries and queues (extglob negation would match them, so they are refused first).
  if (relativePath.split('/').some((segment) => segment.startsWith('.'))) return undefined;
  for (const [kind, pattern] of STRUCTURE) {
    if (micromatch.isMatch(relativePath, pattern, options)) return { role: 'structure', kind };
  }
  for (const [kind, pattern] of LEAVES) {
    if (!micromatch.isMatch(relativePath, pattern, options)) continue;
    // Config and pool backups are folders named by their datetime; anything else there is not a backup.
    if (kind !== 'vm' && !isDatetimeName(relativePath.slice(relativePath.lastIndexOf('/') + 1))) return undefined;
    return { role: 'leaf', kind };
  }
  return undefined;
}

const VM_METADATA = /^\d{8}T\d{6}Z?\.json$/;

// The file whose appearance or change in a leaf folder can mean a backup just completed.
export function isCompletionSignal(kind: BackupKind, fileName: string): boolean {
  return kind === 'vm' ? VM_METADATA.test(fileName) : fileName === 'metadata.json';
}

export function isVmMetadataName(fileName: string): boolean {
  return VM_METADATA.test(fileName);
}
