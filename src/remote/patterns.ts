import micromatch from 'micromatch';
import { isDatetimeName, isVmMetadataName } from './datetime.js';

// What a folder under a remote root is, judged from its path relative to the root.
// Structural folders only lead to others; leaf folders are where a completion signal appears.
export type StructuralFolder =
  'root' | 'vmTree' | 'configTree' | 'configSchedule' | 'poolTree' | 'poolSchedule' | 'poolOfSchedule';
export type BackupKind = 'vm' | 'config' | 'pool';
export type FolderRole = { role: 'structure'; kind: StructuralFolder } | { role: 'leaf'; kind: BackupKind };

const options = { dot: false } as const;

// Compiled once: micromatch.isMatch rebuilds its regular expression on every call (docs/performance.md).
const compile = (pattern: string): ((path: string) => boolean) => micromatch.matcher(pattern, options);

const STRUCTURE: [StructuralFolder, (path: string) => boolean][] = [
  ['vmTree', compile('xo-vm-backups')],
  ['configTree', compile('xo-config-backups')],
  ['configSchedule', compile('xo-config-backups/*')],
  ['poolTree', compile('xo-pool-metadata-backups')],
  ['poolSchedule', compile('xo-pool-metadata-backups/*')],
  ['poolOfSchedule', compile('xo-pool-metadata-backups/*/*')],
];

// `*.lock` VM folders are XO's run locks, never backups; dot folders (.queue and temporaries) are XO's own.
const LEAVES: [BackupKind, (path: string) => boolean][] = [
  ['vm', compile('xo-vm-backups/!(*.lock)')],
  ['config', compile('xo-config-backups/*/*')],
  ['pool', compile('xo-pool-metadata-backups/*/*/*')],
];

export function classifyFolder(relativePath: string): FolderRole | undefined {
  if (relativePath === '') return { role: 'structure', kind: 'root' };
  // Dot names are XO's temporaries and queues (extglob negation would match them, so they are refused first).
  if (relativePath.split('/').some((segment) => segment.startsWith('.'))) return undefined;
  for (const [kind, matches] of STRUCTURE) {
    if (matches(relativePath)) return { role: 'structure', kind };
  }
  for (const [kind, matches] of LEAVES) {
    if (!matches(relativePath)) continue;
    // Config and pool backups are folders named by their datetime; anything else there is not a backup.
    if (kind !== 'vm' && !isDatetimeName(relativePath.slice(relativePath.lastIndexOf('/') + 1))) return undefined;
    return { role: 'leaf', kind };
  }
  return undefined;
}

// The file whose appearance or change in a leaf folder can mean a backup just completed.
export function isCompletionSignal(kind: BackupKind, fileName: string): boolean {
  return kind === 'vm' ? isVmMetadataName(fileName) : fileName === 'metadata.json';
}
