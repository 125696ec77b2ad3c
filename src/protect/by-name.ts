import path from 'node:path';
import {
  chainClaimsByName,
  dataDirectoryClaims,
  isFinishedVhdDirectory,
  vhdDirectoryNames,
  type DataDirectory,
} from '../remote/by-name.js';
import type { Claim, VdiFolder } from '../remote/model.js';
import { listFolder } from '../remote/read.js';
import type { BackupRef } from './context.js';

// Encrypted remotes: the VHD directories of every VDI folder, each claimed by the backup its name says (remote/by-name.ts).
// A directory with no alias of its own name is listed once more, to lock it only once XO has finished writing it.
export async function claimsByName(
  vmFolder: string,
  vdis: readonly VdiFolder[],
  complete: readonly BackupRef[],
  chains: boolean,
): Promise<Claim<BackupRef>[]> {
  const claims: Claim<BackupRef>[] = [];
  for (const vdi of vdis) {
    if (!vdi.entries.some((e) => e.isDirectory && e.name === 'data')) continue;
    const dataFolder = `${vdi.path}/data`;
    const directories: DataDirectory[] = [];
    for (const name of vhdDirectoryNames(await listFolder(path.join(vmFolder, dataFolder)))) {
      const alias = `${name.slice(0, -'.vhd'.length)}.alias.vhd`;
      const finished =
        vdi.entries.some((e) => e.isFile && e.name === alias) ||
        isFinishedVhdDirectory(await listFolder(path.join(vmFolder, dataFolder, name)));
      directories.push({ path: `${dataFolder}/${name}`, name, finished });
    }
    for (const claim of (chains ? chainClaimsByName : dataDirectoryClaims)(vdi, directories, complete))
      claims.push(claim);
  }
  return claims;
}
