import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../atomic.js';
import { AppError, errnoCode } from '../errors.js';

// The version of everything under indexPath (entries, .windows/, proven and clock state) this release writes and
// reads. A release that changes any of them in a way an older one would misread raises it; a release refuses an
// index of a higher version instead of misreading it (a downgrade). An index from before format.json
// existed is version 1.
export const INDEX_FORMAT = 1;
export const FORMAT_FILE = 'format.json';

// The version a record or file declares; one without a version was written before versions were recorded: 1.
export function versionOf(value: unknown): number {
  if (typeof value !== 'object' || value === null || !('version' in value)) return 1;
  const { version } = value;
  return typeof version === 'number' && Number.isInteger(version) && version >= 1 ? version : Number.NaN;
}

// What an admin reads when a file is newer than this release: which file, which versions, what to do.
export function newerFormatError(file: string, found: number): AppError {
  return new AppError(
    'INDEX_FORMAT_NEWER',
    `${file} has format version ${Number.isNaN(found) ? '(unreadable)' : found}, and this release reads up to ` +
      `${INDEX_FORMAT}: it was written by a newer xo-immutable-backups`,
    {
      value: file,
      hint:
        'install that newer version again (npm install -g xo-immutable-backups@<version>, then install-unit); a ' +
        'downgrade would misread the index. docs/installation.md, "Upgrade", says what carries over',
    },
  );
}

// Throws when indexPath holds a newer format than this release reads. A missing file or folder is version 1.
export async function checkIndexFormat(indexPath: string): Promise<void> {
  const file = path.join(indexPath, FORMAT_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return;
    throw error;
  }
  let found: number;
  try {
    found = versionOf(JSON.parse(text));
  } catch {
    found = Number.NaN;
  }
  if (!(found <= INDEX_FORMAT)) throw newerFormatError(file, found);
}

// Written once the index is created or first used by this release, so that an older release that knows format.json
// refuses a newer index.
export async function recordIndexFormat(indexPath: string): Promise<void> {
  await checkIndexFormat(indexPath);
  const file = path.join(indexPath, FORMAT_FILE);
  const current = await readFile(file, 'utf8').catch(() => undefined);
  if (current !== undefined && versionOf(JSON.parse(current)) === INDEX_FORMAT) return;
  await mkdir(indexPath, { recursive: true, mode: 0o700 });
  await writeFileAtomic(file, `${JSON.stringify({ version: INDEX_FORMAT })}\n`, 0o600);
}
