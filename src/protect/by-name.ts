import path from 'node:path';
import type { AttributesAdapter, Within } from '../attributes/adapter.js';
import { chainClaimsByName, dataDirectoryClaims, looksOrphaned, type DataDirectory } from '../remote/by-name.js';
import type { Claim, VdiFolder } from '../remote/model.js';
import type { BackupRef } from './context.js';

// Where the flags of directories that look orphaned are read; without it they count as locked (when in doubt, protect).
export interface OrphanFlags {
  reader: Pick<AttributesAdapter, 'isImmutable'>;
  within: Within;
}

// Encrypted remotes: the VHD directories of a snapshot's VDI folders (backup/snapshot.ts: a directory with no alias
// of its own name is finished once it holds header, footer and bat), with the flag of each that looks orphaned read
// (one helper run for the folder), so that one locked already stays claimed. Copies: the snapshot is left as read.
export async function withOrphanFlags(
  vmFolder: string,
  vdis: readonly VdiFolder[],
  data: ReadonlyMap<string, readonly DataDirectory[]>,
  flags?: OrphanFlags,
): Promise<Map<string, DataDirectory[]>> {
  const copies = new Map([...data].map(([vdi, directories]) => [vdi, directories.map((d) => ({ ...d }))]));
  const suspects = vdis.flatMap((vdi) => looksOrphaned(vdi, copies.get(vdi.path) ?? []));
  if (flags === undefined || suspects.length === 0) return copies;
  const read = await flags.reader.isImmutable(
    flags.within,
    suspects.map((d) => path.join(vmFolder, d.path)),
  );
  for (const directory of suspects) directory.locked = read.get(path.join(vmFolder, directory.path));
  return copies;
}

// Pure: each VHD directory claimed by the backup its name says (remote/by-name.ts), with its chain or alone.
export function claimsByName(
  vdis: readonly VdiFolder[],
  data: ReadonlyMap<string, readonly DataDirectory[]>,
  complete: readonly BackupRef[],
  chains: boolean,
): Claim<BackupRef>[] {
  return vdis.flatMap((vdi) =>
    vdi.entries.some((e) => e.isDirectory && e.name === 'data')
      ? (chains ? chainClaimsByName : dataDirectoryClaims)(vdi, data.get(vdi.path) ?? [], complete)
      : [],
  );
}
