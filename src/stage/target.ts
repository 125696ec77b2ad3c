import { readdir, realpath, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import { readFilesystemType } from '../attributes/filesystem.js';
import type { RemoteConfig } from '../config/schema.js';
import { errnoCode } from '../errors.js';
import { realpathOfNearest } from '../paths.js';
import type { ProtectedRoot, TargetFacts } from './plan.js';

export interface TargetInfo extends TargetFacts {
  // The folder to create or fill, absolute.
  absolute: string;
  // Free space where it will be, and whether that is the remote's own filesystem (where a reflink can share blocks).
  freeBytes: number;
  sameFilesystemAsRemote: boolean;
}

// What the target folder is now: read once, judged by plan.ts judgeTarget.
export async function inspectTarget(given: string, remoteRealRoot: string): Promise<TargetInfo> {
  const absolute = path.resolve(given);
  const real = await realpathOfNearest(absolute);
  let state: TargetFacts['state'] = 'missing';
  try {
    const stats = await stat(absolute);
    state = !stats.isDirectory() ? 'not-directory' : (await readdir(absolute)).length === 0 ? 'empty' : 'not-empty';
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw error;
  }
  const existing = await nearestExisting(real);
  const [space, here, remote] = await Promise.all([statfs(existing), stat(existing), stat(remoteRealRoot)]);
  return {
    given,
    absolute,
    real,
    state,
    filesystem: readFilesystemType(real),
    freeBytes: Number(space.bavail) * Number(space.bsize),
    sameFilesystemAsRemote: here.dev === remote.dev,
  };
}

// Every configured remote, resolved as far as it exists (an unmounted one is still refused by its path).
export async function protectedRoots(remotes: readonly RemoteConfig[]): Promise<ProtectedRoot[]> {
  return Promise.all(
    remotes.map(async (r) => ({
      id: r.id,
      root: path.resolve(r.root),
      realRoot: await realpathOfNearest(r.root).catch(() => path.resolve(r.root)),
    })),
  );
}

async function nearestExisting(real: string): Promise<string> {
  for (let current = real; ; current = path.dirname(current)) {
    try {
      return await realpath(current);
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT' || current === path.dirname(current)) throw error;
    }
  }
}
