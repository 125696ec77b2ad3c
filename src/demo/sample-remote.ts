import { randomUUID } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

// Writes backups the way XO lays them out and in XO's order (disks first, the json last), for the demo and the tests.

export function xoDatetime(instant: number): string {
  return new Date(instant)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}

export type SampleDisk =
  { type: 'flat' } | { type: 'vhd-directory'; blocks?: number } | { type: 'legacy-vhd-directory' };

export interface SampleVmBackup {
  vm?: string;
  datetime: string;
  disks?: SampleDisk[];
  xva?: boolean;
  // Encrypted remotes: the json is ciphertext that never parses.
  encrypted?: boolean;
  jobId?: string;
}

export interface WrittenBackup {
  // The path XO's completion signal lives at (the json, or the date folder).
  label: string;
  // What must end up immutable.
  units: string[];
  // Everything written next to it that must stay mutable.
  neverLocked: string[];
}

export async function writeVmBackup(root: string, backup: SampleVmBackup): Promise<WrittenBackup> {
  const vm = backup.vm ?? randomUUID();
  const jobId = backup.jobId ?? 'a1b2c3d4-0000-4000-8000-000000000001';
  const folder = path.join(root, 'xo-vm-backups', vm);
  const dt = backup.datetime;
  await mkdir(folder, { recursive: true });
  const units: string[] = [];
  const vhds: Record<string, string> = {};
  for (const disk of backup.disks ?? [{ type: 'flat' }]) {
    const vdi = randomUUID();
    const written = await writeDisk(path.join(folder, 'vdis', jobId, vdi), dt, disk, backup.encrypted === true);
    units.push(...written.units);
    vhds[vdi] = `vdis/${jobId}/${vdi}/${written.name}`;
  }
  if (backup.xva === true) units.push(...(await writeXva(folder, dt)));
  const cache = path.join(folder, 'cache.json.gz');
  await writeFile(cache, 'cache');
  const metadata = {
    jobId,
    mode: backup.xva === true ? 'full' : 'delta',
    timestamp: Date.parse(
      `${dt.slice(0, 4)}-${dt.slice(4, 6)}-${dt.slice(6, 8)}` +
        `T${dt.slice(9, 11)}:${dt.slice(11, 13)}:${dt.slice(13, 15)}Z`,
    ),
    ...(backup.xva === true ? { xva: `./${dt}.xva` } : { vhds }),
  };
  const json = path.join(folder, `${dt}.json`);
  await writeFile(
    json,
    backup.encrypted === true ? cipherText(JSON.stringify(metadata)) : JSON.stringify(metadata, null, 2),
  );
  units.push(json);
  return { label: json, units, neverLocked: [cache] };
}

// One disk in its VDI folder: a flat VHD, or a VHD directory with its alias. `name`: what the json names.
async function writeDisk(
  vdiFolder: string,
  dt: string,
  disk: SampleDisk,
  encrypted: boolean,
): Promise<{ units: string[]; name: string }> {
  await mkdir(vdiFolder, { recursive: true });
  if (disk.type === 'flat') {
    await writeFile(path.join(vdiFolder, `${dt}.vhd`), Buffer.alloc(4096, 1));
    return { units: [path.join(vdiFolder, `${dt}.vhd`)], name: `${dt}.vhd` };
  }
  const dataName = disk.type === 'legacy-vhd-directory' ? `${randomUUID()}.vhd` : `${dt}.vhd`;
  const vhdDir = path.join(vdiFolder, 'data', dataName);
  const blocks = disk.type === 'vhd-directory' ? (disk.blocks ?? 3) : 3;
  await mkdir(path.join(vhdDir, 'blocks', '0'), { recursive: true });
  for (let block = 0; block < blocks; block++)
    await writeFile(path.join(vhdDir, 'blocks', '0', String(block)), Buffer.alloc(512, block));
  for (const part of ['chunk-filters.json', 'bat', 'footer', 'header']) await writeFile(path.join(vhdDir, part), part);
  // XO writes the alias through its encrypting layer too: on an encrypted remote it is ciphertext, not a path.
  const target = `data/${dataName}`;
  await writeFile(path.join(vdiFolder, `${dt}.alias.vhd`), encrypted ? cipherText(target) : target);
  return { units: [path.join(vdiFolder, `${dt}.alias.vhd`), vhdDir], name: `${dt}.alias.vhd` };
}

// Large files land under a dot name and are renamed into place.
async function writeXva(folder: string, dt: string): Promise<string[]> {
  const temporary = path.join(folder, `.${Date.now()}.${dt}.xva`);
  await writeFile(temporary, Buffer.alloc(8192, 2));
  await rename(temporary, path.join(folder, `${dt}.xva`));
  await writeFile(path.join(folder, `${dt}.xva.checksum`), 'sha256-of-the-xva');
  return [path.join(folder, `${dt}.xva`), path.join(folder, `${dt}.xva.checksum`)];
}

export async function writeConfigBackup(root: string, schedule: string, datetime: string): Promise<WrittenBackup> {
  return writeDateFolder(path.join(root, 'xo-config-backups', schedule, datetime), 'data.json');
}

export async function writePoolBackup(
  root: string,
  schedule: string,
  pool: string,
  datetime: string,
): Promise<WrittenBackup> {
  return writeDateFolder(path.join(root, 'xo-pool-metadata-backups', schedule, pool, datetime), 'data');
}

async function writeDateFolder(folder: string, dataName: string): Promise<WrittenBackup> {
  await mkdir(folder, { recursive: true });
  await writeFile(path.join(folder, dataName), '{"sample":true}');
  await writeFile(path.join(folder, 'metadata.json'), JSON.stringify({ data: dataName }));
  return {
    label: folder,
    units: [folder, path.join(folder, dataName), path.join(folder, 'metadata.json')],
    neverLocked: [],
  };
}

// Bytes that look like XO's aes-256-gcm output: never valid JSON.
function cipherText(plain: string): Buffer {
  const bytes = Buffer.alloc(plain.length + 28);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 131 + 7) % 251;
  bytes[0] = 0xff;
  return bytes;
}
