import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startDaemon } from '../support/daemon.js';
import { finishVhdDirectoryBackup, vhdDirectoryPaths } from '../support/xo-writes.js';
import { isImmutable, tempRemote, waitFor } from '../support/remote.js';

// docs/security.md, "Error floods": thousands of links planted at blocks/<n> of a VHD directory with XO's credentials
// are said in a bounded number of lines, each path at most once (session 18's review: one line per link, and all of
// them again in a second round).
const LINKS = 2_000;

describe('thousands of dangling links at blocks/<n> of a VHD directory', () => {
  it('are said in a bounded number of lines, each at most once', async () => {
    const remote = await tempRemote();
    const { logs } = await startDaemon(remote);
    const { vm, vdi, datetime: dt, vhd } = vhdDirectoryPaths(remote.root);
    await mkdir(path.join(vhd, 'blocks'), { recursive: true });
    // One link that is put back (so that a second round runs), and many that lead nowhere.
    await mkdir(path.join(vdi, 'data', '.h'));
    await writeFile(path.join(vdi, 'data', '.h', '0'), Buffer.alloc(512, 7));
    await symlink(path.join('..', '..', '.h'), path.join(vhd, 'blocks', '0'));
    for (let n = 1; n <= LINKS; n++) await symlink(`nowhere-${n}`, path.join(vhd, 'blocks', String(n)));
    const { json } = await finishVhdDirectoryBackup(vm, dt, undefined, [
      'chunk-filters.json',
      'header',
      'bat',
      'footer',
    ]);

    await waitFor(() => isImmutable(json) && isImmutable(vhd), 'the backup to be locked', 30_000);
    const blockWarnings = logs.filter(
      (l) => l.security === true && typeof l.path === 'string' && l.path.includes(`${path.sep}blocks${path.sep}`),
    );
    const perPath = new Map<string, number>();
    for (const l of blockWarnings) perPath.set(l.path as string, (perPath.get(l.path as string) ?? 0) + 1);
    expect({
      lines: blockWarnings.length,
      saidTwice: [...perPath.values()].filter((n) => n > 1).length,
    }).toEqual({ lines: expect.any(Number) as unknown, saidTwice: 0 });
    expect(blockWarnings.length).toBeLessThanOrEqual(10);
  }, 90_000);
});
