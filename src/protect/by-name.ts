import path from 'node:path';
import type { AttributesAdapter, Within } from '../attributes/adapter.js';
import {
  chainClaimsByName,
  dataDirectoryClaims,
  isFinishedVhdDirectory,
  looksOrphaned,
  vhdDirectoryNames,
  type DataDirectory,
} from '../remote/by-name.js';
import type { Claim, VdiFolder } from '../remote/model.js';
import { byPath } from '../remote/read.js';
import type { RemoteRoot } from '../remote/root.js';
import type { BackupRef } from './context.js';

// Where the flags of directories that look orphaned are read; without it they count as locked (when in doubt, protect).
export interface OrphanFlags {
  reader: Pick<AttributesAdapter, 'isImmutable'>;
  within: Within;
}

// Encrypted remotes: the VHD directories of every VDI folder, each claimed by the backup its name says (remote/by-name.ts).
// A directory with no alias of its own name is listed once more, to lock it only once XO has finished writing it; one
// that looks orphaned has its flag read (one helper run for the folder), so that one locked already stays claimed.
export async function claimsByName(
  { remote, path: vmFolder }: { remote: RemoteRoot; path: string },
  vdis: readonly VdiFolder[],
  complete: readonly BackupRef[],
  chains: boolean,
  flags?: OrphanFlags,
): Promise<Claim<BackupRef>[]> {
  const found: { vdi: VdiFolder; directories: DataDirectory[] }[] = [];
  for (const vdi of vdis) {
    if (!vdi.entries.some((e) => e.isDirectory && e.name === 'data')) continue;
    const dataFolder = `${vdi.path}/data`;
    const directories: DataDirectory[] = [];
    for (const name of vhdDirectoryNames(await byPath.listFolder(remote, path.join(vmFolder, dataFolder)))) {
      const alias = `${name.slice(0, -'.vhd'.length)}.alias.vhd`;
      const finished =
        vdi.entries.some((e) => e.isFile && e.name === alias) ||
        isFinishedVhdDirectory(await byPath.listFolder(remote, path.join(vmFolder, dataFolder, name)));
      directories.push({ path: `${dataFolder}/${name}`, name, finished });
    }
    found.push({ vdi, directories });
  }
  const suspects = found.flatMap(({ vdi, directories }) => looksOrphaned(vdi, directories));
  if (flags !== undefined && suspects.length > 0) {
    const read = await flags.reader.isImmutable(
      flags.within,
      suspects.map((d) => path.join(vmFolder, d.path)),
    );
    for (const directory of suspects) directory.locked = read.get(path.join(vmFolder, directory.path));
  }
  const claims: Claim<BackupRef>[] = [];
  for (const { vdi, directories } of found)
    claims.push(...(chains ? chainClaimsByName : dataDirectoryClaims)(vdi, directories, complete));
  return claims;
}
