import { lstat } from 'node:fs/promises';
import path from 'node:path';
import type { AttributesAdapter, Within } from '../attributes/adapter.js';
import { errnoCode } from '../errors.js';

// What XO writes at a remote's root when it sets the remote up: encryption.json, and metadata.json, the canary it
// decrypts at every connection. XO rewrites them only on a root holding nothing else, and refuses to open an encrypted
// remote without them ("Remote directory must be empty."): deleting them would make every backup unreachable.
export const XO_SETUP_FILES = ['encryption.json', 'metadata.json'] as const;

// Locks the set-up files the root holds (regular files only), alongside immutability.json. Returns those locked all
// the same although not as XO writes them (a second hard link: the flag helper's warning), for a security warning.
export async function lockSetupFiles(
  within: Within,
  attributes: AttributesAdapter,
): Promise<{ path: string; message: string }[]> {
  const present = [];
  for (const name of XO_SETUP_FILES) {
    const file = path.join(within.root, name);
    try {
      if ((await lstat(file)).isFile()) present.push({ path: file, recursive: false });
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw error;
    }
  }
  if (present.length === 0) return [];
  const warned: { path: string; message: string }[] = [];
  for (const outcome of await attributes.setImmutable(within, present, true)) {
    if (outcome.status === 'failed') throw new Error(`cannot lock ${outcome.path}: ${outcome.message}`);
    if (outcome.status === 'ok' && outcome.warning !== undefined)
      warned.push({ path: outcome.path, message: outcome.warning.message });
  }
  return warned;
}
