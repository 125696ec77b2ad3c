import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { errnoCode } from '../errors.js';
import { isInside } from '../paths.js';
import { systemctlCat, systemdRuns } from './systemctl.js';
import type { UnitSource } from './unit-file.js';

export const UNIT_NAME = 'xo-immutable-backups.service';
// Where systemd looks for a system unit and its drop-ins, most important first (systemd.unit(5)).
export const UNIT_DIRS = [
  '/etc/systemd/system',
  '/run/systemd/system',
  '/lib/systemd/system',
  '/usr/lib/systemd/system',
];

export interface InstalledUnit {
  // "systemctl cat" when systemd said it, else the folder searched.
  from: string;
  sources: UnitSource[];
}

// The unit as systemd would run it: from `systemctl cat` when systemd runs and no root is given, else read from the
// unit folders under `root` (the first unit file found, then every *.conf drop-in by name, a name in a more
// important folder masking the same name in a less important one). Undefined when there is no unit.
export async function readInstalledUnit(root: string | undefined): Promise<InstalledUnit | undefined> {
  if (root === undefined && systemdRuns()) {
    const text = await systemctlCat(UNIT_NAME);
    return text === undefined ? undefined : { from: 'systemctl cat', sources: splitCatOutput(text) };
  }
  const base = root ?? '/';
  let unit: UnitSource | undefined;
  for (const dir of UNIT_DIRS) {
    const file = path.join(dir, UNIT_NAME);
    const text = await readOptional(path.join(base, file));
    if (text !== undefined) {
      unit = { path: file, text };
      break;
    }
  }
  if (unit === undefined) return undefined;
  const dropIns = new Map<string, string>();
  for (const dir of UNIT_DIRS) {
    const folder = path.join(dir, `${UNIT_NAME}.d`);
    for (const name of await unlessMissing(readdir(path.join(base, folder)), []))
      if (name.endsWith('.conf') && !dropIns.has(name)) dropIns.set(name, path.join(folder, name));
  }
  const sources = [unit];
  for (const name of [...dropIns.keys()].sort()) {
    const file = dropIns.get(name)!;
    const text = await readOptional(path.join(base, file));
    if (text !== undefined) sources.push({ path: file, text });
  }
  return { from: base, sources };
}

// A file as the service sees it when the system lives under `root` (systemctl --root): named from inside it.
export function viewedFrom(root: string, file: string): string {
  return isInside(file, root) ? path.join('/', path.relative(root, file)) : file;
}

// `systemctl cat` prints each file after a "# /path/of/file" line.
export function splitCatOutput(text: string): UnitSource[] {
  const sources: UnitSource[] = [];
  for (const line of text.split('\n')) {
    const header = /^# (\/\S+\.(?:service|conf))$/.exec(line);
    if (header) sources.push({ path: header[1]!, text: '' });
    else if (sources.length > 0) sources[sources.length - 1]!.text += `${line}\n`;
  }
  return sources;
}

// A file's text (undefined), or a folder's names ([]), when it is missing: ENOENT, or a file where a folder was.
async function unlessMissing<T, M>(read: Promise<T>, missing: M): Promise<T | M> {
  try {
    return await read;
  } catch (error) {
    if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') return missing;
    throw error;
  }
}

export function readOptional(file: string): Promise<string | undefined> {
  return unlessMissing(readFile(file, 'utf8'), undefined);
}
