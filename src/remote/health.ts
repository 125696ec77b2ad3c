import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { AttributesAdapter, Within } from '../attributes/adapter.js';
import { errnoCode } from '../errors.js';
import { IMMUTABILITY_FILE } from './immutability-file.js';

// Whether a root is still the remote the daemon protects: it exists, and holds the immutability.json the daemon locked
// at start. An unmounted remote is an empty folder (or none), a swapped disk has no such file: undefined means healthy.
export async function remoteHealthProblem(remote: Within, attributes: AttributesAdapter): Promise<string | undefined> {
  const { root } = remote;
  try {
    if (!(await stat(root)).isDirectory()) return `${root} is not a directory any more`;
  } catch (error) {
    const why =
      errnoCode(error) === 'ENOENT' ? 'does not exist any more' : `cannot be read (${(error as Error).message})`;
    return `${root} ${why}`;
  }
  const marker = path.join(root, IMMUTABILITY_FILE);
  if ((await attributes.isImmutable(remote, [marker])).get(marker) === true) return undefined;
  return `${root} has no locked ${IMMUTABILITY_FILE}: is the remote mounted?`;
}
