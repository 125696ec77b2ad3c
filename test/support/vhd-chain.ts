import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { brotliCompressSync } from 'node:zlib';

// A VM's incremental chain laid out as XO's vhd-lib writes it on a remote with VHD directories: per run an alias
// "<dt>.alias.vhd" naming "data/<dt>.vhd", whose footer says base (dynamic) or delta (differencing) and whose header
// names the parent alias; parts brotli-compressed as chunk-filters.json says. Only the fields a chain reader needs.

export const JOB = 'a1b2c3d4-0000-4000-8000-000000000001';
export const SCHEDULE = 'b1b2c3d4-0000-4000-8000-000000000002';

export interface ChainBackup {
  datetime: string;
  json: string;
  alias: string;
  directory: string;
}

function footer(differencing: boolean): Buffer {
  const bytes = Buffer.alloc(512);
  bytes.write('conectix', 0, 'latin1');
  bytes.writeBigUInt64BE(512n, 16);
  bytes.writeUInt32BE(differencing ? 4 : 3, 60);
  return bytes;
}

function header(parent: string | undefined): Buffer {
  const bytes = Buffer.alloc(1024);
  bytes.write('cxsparse', 0, 'latin1');
  if (parent !== undefined) {
    const name = Buffer.from(parent, 'utf16le');
    name.swap16();
    name.copy(bytes, 64);
  }
  return bytes;
}

// One run per datetime, each a delta on the one before (the first a base, or `firstIsDelta`: its parent was merged
// away). `full`: runs that start a new chain. `already`: runs written before (perhaps locked since): not written again.
export async function writeVhdChain(
  root: string,
  vm: string,
  vdi: string,
  datetimes: readonly string[],
  options: { full?: readonly string[]; already?: readonly string[] } = {},
): Promise<ChainBackup[]> {
  const folder = path.join(root, 'xo-vm-backups', vm);
  const vdiFolder = path.join(folder, 'vdis', JOB, vdi);
  const written: ChainBackup[] = [];
  let parent: string | undefined;
  for (const dt of datetimes) {
    const base = parent === undefined || options.full?.includes(dt) === true;
    if (options.already?.includes(dt) === true) {
      parent = `${dt}.alias.vhd`;
      continue;
    }
    const directory = path.join(vdiFolder, 'data', `${dt}.vhd`);
    await mkdir(path.join(directory, 'blocks', '0'), { recursive: true });
    await writeFile(path.join(directory, 'blocks', '0', '0'), Buffer.alloc(4096, 7));
    await writeFile(path.join(directory, 'chunk-filters.json'), '["brotli"]');
    await writeFile(path.join(directory, 'footer'), brotliCompressSync(footer(!base)));
    await writeFile(path.join(directory, 'header'), brotliCompressSync(header(base ? undefined : parent)));
    await writeFile(path.join(directory, 'bat'), brotliCompressSync(Buffer.alloc(512, 0x80)));
    const alias = path.join(vdiFolder, `${dt}.alias.vhd`);
    await writeFile(alias, `data/${dt}.vhd`);
    const json = path.join(folder, `${dt}.json`);
    await writeFile(
      json,
      JSON.stringify({
        jobId: JOB,
        scheduleId: SCHEDULE,
        mode: 'delta',
        timestamp: Date.parse(
          `${dt.slice(0, 4)}-${dt.slice(4, 6)}-${dt.slice(6, 8)}T${dt.slice(9, 11)}:${dt.slice(11, 13)}:${dt.slice(13, 15)}Z`,
        ),
        isVhdDifferencing: { [`${vdi}-ref`]: !base },
        vhds: { [`${vdi}-ref`]: `vdis/${JOB}/${vdi}/${dt}.alias.vhd` },
      }),
    );
    written.push({ datetime: dt, json, alias, directory });
    parent = `${dt}.alias.vhd`;
  }
  return written;
}
