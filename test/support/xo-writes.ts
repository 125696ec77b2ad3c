import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { xoDatetime } from '../../src/demo/sample-remote.js';

// The job and VDI of the link tests: one disk, written again and again as XO does.
export const JOB = 'a1b2c3d4-0000-4000-8000-000000000001';
export const VDI = 'b1b2c3d4-0000-4000-8000-000000000002';

export interface FinishedBackup {
  alias: string;
  json: string;
}

// What XO writes once a VHD directory's blocks are in (through whatever links were planted on its way): the VHD
// directory's `parts`, then its alias beside data/, then the backup's json naming the alias.
export async function finishVhdDirectoryBackup(
  vm: string,
  datetime: string,
  dataName = `${datetime}.vhd`,
  parts: readonly string[] = ['bat', 'footer'],
): Promise<FinishedBackup> {
  const vdi = path.join(vm, 'vdis', JOB, VDI);
  for (const part of parts) await writeFile(path.join(vdi, 'data', dataName, part), part);
  const alias = path.join(vdi, `${datetime}.alias.vhd`);
  await writeFile(alias, `data/${dataName}`);
  const json = path.join(vm, `${datetime}.json`);
  const vhds = { [VDI]: `vdis/${JOB}/${VDI}/${datetime}.alias.vhd` };
  await writeFile(json, JSON.stringify({ jobId: JOB, mode: 'delta', timestamp: Date.now(), vhds }));
  return { alias, json };
}

export interface VhdDirectoryPaths {
  vm: string;
  vdi: string;
  data: string;
  datetime: string;
  vhd: string;
}

// Where XO writes a backup of the link tests' disk as a VHD directory, dated a minute ago: its VM folder, VDI folder,
// data/, datetime and VHD directory (nothing is made).
export function vhdDirectoryPaths(root: string, vmName = 'vm-1'): VhdDirectoryPaths {
  const vm = path.join(root, 'xo-vm-backups', vmName);
  const vdi = path.join(vm, 'vdis', JOB, VDI);
  const data = path.join(vdi, 'data');
  const datetime = xoDatetime(Date.now() - 60_000);
  return { vm, vdi, data, datetime, vhd: path.join(data, `${datetime}.vhd`) };
}
