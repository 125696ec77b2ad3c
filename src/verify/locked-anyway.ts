import type { AttributesAdapter } from '../attributes/adapter.js';
import type { RemoteContext } from '../context/remote-context.js';
import type { IndexEntry } from '../index/entry.js';

// What the flag helper refuses to clear because the unit is not as XO writes it (docs/security.md, "Links and special
// files as units", "Directory units: XO's layout and nothing else").
const LOCKED_ANYWAY_CODES = new Set(['EFOREIGN', 'ELINKS']);

// Units locked all the same although they are not as XO writes them (a directory holding what XO never writes, a file
// with a second name): locked and unchanged, so no other check names them, and lift leaves them locked until an admin
// removes what is not XO's. The flag helper checks each as a clear would, changing nothing; path -> its reason.
export async function lockedAnyway(
  remote: RemoteContext,
  attributes: AttributesAdapter,
  locked: readonly IndexEntry[],
): Promise<Map<string, string>> {
  const outcomes = await attributes.checkClear(
    remote,
    locked.map((entry) => ({
      path: entry.path,
      recursive: entry.recursive,
      layout: entry.kind === 'vm' ? 'vhd-directory' : 'date-folder',
    })),
  );
  const found = new Map<string, string>();
  for (const outcome of outcomes)
    if (outcome.status === 'failed' && LOCKED_ANYWAY_CODES.has(outcome.code))
      found.set(
        outcome.path,
        `locked all the same, but not as XO writes it: ${outcome.message}; lift leaves it locked until an admin ` +
          'removes what XO never writes (docs/operations.md, XoImmutableSecurityWarnings)',
      );
  return found;
}
