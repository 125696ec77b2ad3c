import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { xoDatetime } from '../../src/demo/sample-remote.js';
import { startDaemon } from '../support/daemon.js';
import { allImmutable, filesBelow, isImmutable, tempRemote, waitFor } from '../support/remote.js';
import { writeVhdChain } from '../support/vhd-chain.js';

const HOUR = 3_600_000;

// A lift (or a hold) clears a VHD directory from the bottom up and the top last: one that stopped part-way leaves the
// top folder locked, its entry and identity unchanged, and what is below mutable. A newer backup claiming that
// directory for its chain must lock it again through the flag helper, not take it as locked on its entry.
describe('a VHD directory a lift left half cleared', () => {
  it('is locked again, whole, when a newer backup claims it for its chain', async () => {
    const remote = await tempRemote();
    const times = [xoDatetime(Date.now() - 3 * HOUR), xoDatetime(Date.now() - 2 * HOUR)];
    const [base] = await writeVhdChain(remote.root, 'vm', 'vdi', times.slice(0, 1));
    const running = await startDaemon(remote);
    await waitFor(() => allImmutable([base!.json, base!.alias, base!.directory]), 'the base to be locked');
    await waitFor(() => running.logs.some((l) => l.msg.includes('full proof')), 'the start-up full proof');
    const below = await filesBelow(base!.directory);
    expect(below.every(isImmutable)).toBe(true);
    // What a lift stopped after its first files leaves behind (the top folder still +i, as the helper clears it last).
    for (const file of below.filter((p) => !p.includes(`${path.sep}blocks`)))
      expect(spawnSync('chattr', ['-i', '--', file]).status).toBe(0);
    expect(isImmutable(base!.directory)).toBe(true);

    const [delta] = await writeVhdChain(remote.root, 'vm', 'vdi', times, { already: times.slice(0, 1) });
    await waitFor(() => allImmutable([delta!.json, delta!.alias, delta!.directory]), 'the delta to be locked');
    await waitFor(async () => (await filesBelow(base!.directory)).every(isImmutable), 'the base to be locked whole');
  });
});
