import { rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeConfigBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { IndexStore } from '../../src/index/store.js';
import type { LeafFolder } from '../../src/protect/context.js';
import { reconcileFolder } from '../../src/protect/reconcile.js';
import { tempFolder, tempRemote, type TestRemote } from '../support/remote.js';
import { remoteContextOf } from '../support/remote-context.js';

function dateFolder(remote: TestRemote, folderPath: string): LeafFolder {
  const index = new IndexStore(remote.indexPath, 'r');
  return {
    remote: remoteContextOf(remote.root, index),
    kind: 'config',
    path: folderPath,
  };
}

describe('a config date folder whose metadata.json is a symbolic link', () => {
  it('is refused as a security warning, never locked nor passed over in silence', async () => {
    const remote = await tempRemote();
    const outside = await tempFolder('xo-immutable-outside-');
    const config = await writeConfigBackup(remote.root, 'schedule', xoDatetime(Date.now() - 3_600_000));
    const metadata = path.join(config.label, 'metadata.json');
    await writeFile(path.join(outside, 'metadata.json'), '{"data":"data.json"}');
    await rm(metadata);
    await symlink(path.join(outside, 'metadata.json'), metadata);

    const report = await reconcileFolder(dateFolder(remote, config.label), { now: Date.now(), jsonSettleMs: 0 });
    expect(report.requests).toEqual([]);
    expect(report.refusals).toEqual([expect.objectContaining({ path: metadata, security: true })]);
  });
});
