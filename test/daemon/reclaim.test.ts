import { existsSync, readdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startDaemon } from '../support/daemon.js';
import { tempRemote, waitFor } from '../support/remote.js';

// What the index forgot waits in <indexPath>/.freed/<remote>/ to be unlinked (index/freed.ts). A remote taken out of
// the config left its folder there for ever: the daemon now empties and removes it with the others.
describe('the reclaim service', () => {
  it('empties and removes the .freed/ folder of a remote no longer configured, and empties the configured ones, buckets moved whole included', async () => {
    const remote = await tempRemote();
    const gone = path.join(remote.indexPath, '.freed', 'gone');
    const kept = path.join(remote.indexPath, '.freed', 'r');
    await mkdir(gone, { recursive: true, mode: 0o700 });
    await mkdir(kept, { recursive: true, mode: 0o700 });
    // More than one turn's worth (16).
    for (let i = 0; i < 40; i++) await writeFile(path.join(gone, `1.x.${i}`), 'a forgotten entry');
    for (let i = 0; i < 3; i++) await writeFile(path.join(kept, `1.x.${i}`), 'a forgotten entry');
    // Day buckets forgotten whole (index/store.ts removeDay), one left half-reclaimed by a crashed daemon.
    for (const folder of [path.join(gone, '1.x.bucket'), path.join(kept, '1.x.bucket')]) {
      await mkdir(folder);
      for (let i = 0; i < 20; i++) await writeFile(path.join(folder, `entry-${i}`), 'a forgotten entry');
    }

    await startDaemon(remote);
    await waitFor(
      () => !existsSync(gone),
      () => `${gone} to be removed (holds ${readdirSync(gone).length} file(s))`,
    );
    await waitFor(() => readdirSync(kept).length === 0, 'the configured remote folder to be emptied');
    expect(readdirSync(path.join(remote.indexPath, '.freed')).sort()).toEqual(['r']);
  });
});
