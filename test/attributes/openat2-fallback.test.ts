import { mkdir, realpath, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { askHelper } from '../support/flag-helper.js';
import { isImmutable, tempFolder } from '../support/remote.js';

// On a kernel without openat2 (before 5.6, or a seccomp filter that refuses it), the first path a helper opens finds
// out, and falls back to the component walk. That first path must be walked too: opened as one path, a folder on its
// way that is a link to outside the remote would be followed, and the file there locked (then unlocked by the check
// that follows a lock, which found it was not the path's: ERACE).
function request(root: string, operation: string, records: readonly string[]) {
  return askHelper(operation, root, records, { env: { XO_IMMUTABLE_FLAGS_NO_OPENAT2: '1' } });
}

describe('the flag helper where openat2 is missing', () => {
  it('walks its very first path: a linked folder on the way is refused, nothing outside is locked', async () => {
    const root = await realpath(await tempFolder());
    const outside = await tempFolder('xo-immutable-outside-');
    const victim = path.join(outside, 'victim.json');
    await writeFile(victim, '{}');
    await mkdir(path.join(root, 'xo-vm-backups'));
    await symlink(outside, path.join(root, 'xo-vm-backups', 'linked'));
    const inside = path.join(root, 'xo-vm-backups', 'vm1', 'a.json');
    await mkdir(path.dirname(inside));
    await writeFile(inside, '{}');
    const before = await stat(victim, { bigint: true });

    const [first, second] = request(root, 'set', [
      'F - xo-vm-backups/linked/victim.json',
      'F - xo-vm-backups/vm1/a.json',
    ]);
    expect(first).toMatchObject({ status: 'failed', code: 'ECONFINE' });
    expect(isImmutable(victim)).toBe(false);
    // Never touched: locked and unlocked again (what the check after a lock did) would have changed its ctime.
    expect((await stat(victim, { bigint: true })).ctimeNs).toBe(before.ctimeNs);
    // The walk serves the rest of the helper's life.
    expect(second).toMatchObject({ status: 'ok' });
    expect(isImmutable(inside)).toBe(true);
  });
});
