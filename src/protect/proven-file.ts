import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../atomic.js';
import { errnoCode } from '../errors.js';
import { ProvenBackups } from './proven.js';

// <indexPath>/proven-<remote>.json, beside the remote's index folder (which holds day buckets only), so a daemon that
// restarts skips what it proved before it stopped. Losing it costs one slower start-up, never protection.
export function provenFile(indexFolder: string): string {
  return path.join(path.dirname(indexFolder), `proven-${path.basename(indexFolder)}.json`);
}

export async function loadProven(indexFolder: string): Promise<ProvenBackups> {
  try {
    return ProvenBackups.parse(await readFile(provenFile(indexFolder), 'utf8'));
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return new ProvenBackups();
    throw error;
  }
}

export async function saveProven(indexFolder: string, proven: ProvenBackups): Promise<void> {
  await writeFileAtomic(provenFile(indexFolder), proven.serialize(), 0o600, { durable: true });
}
