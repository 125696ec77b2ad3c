import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { AttributesAdapter, Within } from '../attributes/adapter.js';
import { errnoCode } from '../errors.js';
import { IMMUTABILITY_FILE } from './immutability-file.js';
import { isUntouchedByXo } from './root.js';

// Whether a root is still the remote the daemon protects: it exists, and holds the immutability.json the daemon locked
// at start. An unmounted remote is an empty folder (or none), a swapped disk has no such file: undefined means healthy.
// `markerFailed`: the daemon could not write the file there (daemon/status-files.ts), so its absence says nothing; the
// root must then hold what XO wrote.
export async function remoteHealthProblem(
  remote: Within,
  attributes: AttributesAdapter,
  { markerFailed = false } = {},
): Promise<string | undefined> {
  const { root } = remote;
  try {
    if (!(await stat(root)).isDirectory()) return `${root} is not a directory any more`;
  } catch (error) {
    const why =
      errnoCode(error) === 'ENOENT' ? 'does not exist any more' : `cannot be read (${(error as Error).message})`;
    return `${root} ${why}`;
  }
  if (markerFailed)
    return (await isUntouchedByXo(root))
      ? `${root} holds nothing XO wrote, and no ${IMMUTABILITY_FILE} (it could not be written): is the remote mounted?`
      : undefined;
  const marker = path.join(root, IMMUTABILITY_FILE);
  if ((await attributes.isImmutable(remote, [marker])).get(marker) === true) return undefined;
  return `${root} has no locked ${IMMUTABILITY_FILE}: is the remote mounted?`;
}
