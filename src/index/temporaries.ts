import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { forEachLimited } from '../concurrency.js';
import { errnoCode } from '../errors.js';
import { processExists } from '../lock/instance-lock.js';

// A commit's temporary file for a record: <record name>.<pid>.<n>.tmp, the pid telling whose it is.
export function temporaryOf(folder: string, name: string, n: number): string {
  return path.join(folder, `${name}.${process.pid}.${n}.tmp`);
}

const TEMPORARY_NAME = /^[0-9a-f]{64}\.([0-9]+)\.[0-9]+\.tmp$/;

// A commit removes its temporary files in `finally`, but a crash (or a failed rm) leaves them for ever. Called by the
// index's writer only (one process at a time, lock/instance-lock.ts): a temporary file of another pid is then a
// leftover, removed unless that pid is alive (never a live process's own). Nothing else in the folder is touched.
export async function removeLeftoverTemporaries(folder: string, atOnce: number): Promise<void> {
  let names: string[];
  try {
    names = await readdir(folder);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return;
    throw error;
  }
  const leftovers = names.filter((name) => {
    const pid = Number(TEMPORARY_NAME.exec(name)?.[1] ?? process.pid);
    return pid !== process.pid && !processExists(pid);
  });
  await forEachLimited(leftovers, atOnce, (name) => rm(path.join(folder, name), { force: true }));
}
