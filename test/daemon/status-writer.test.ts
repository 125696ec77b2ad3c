import { describe, expect, it } from 'vitest';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { systemClock } from '../../src/clock.js';
import { RemotePauses } from '../../src/daemon/pauses.js';
import { StatusWriter, type StatusDeps } from '../../src/daemon/status-writer.js';
import { createLogger } from '../../src/log/logger.js';
import { readDaemonStatus } from '../../src/status/daemon-status.js';
import { testConfig } from '../support/daemon.js';
import { tempRemote } from '../support/remote.js';

// The restore-point count waits for the rounds in hand. A scheduler that never goes idle (anyone with XO's
// credentials can keep events coming) must not hold the daemon's stop: the status writer stops first, the scheduler
// after it. The scheduler here is only its idle(), which never resolves; nothing else of it is asked with no remote.
describe('the status writer beside a scheduler that stays busy', () => {
  it('stops at once, its restore-point count not waiting for the rounds', async () => {
    const remote = await tempRemote();
    const config = { ...testConfig(remote), remotes: [], rescanEveryMs: 3_600_000 };
    const busy = { idle: () => new Promise<void>(() => undefined), scheduler: undefined };
    const deps = {
      config,
      clock: systemClock,
      log: createLogger('silent'),
      attributes: new IoctlAdapter(),
      remotes: { list: [] },
      pauses: new RemotePauses(),
      protection: busy,
      watchers: { watchedFolders: () => 0 },
      lift: {},
      holds: { events: 0 },
      statusFiles: { failures: 0, securityWarnings: 0 },
      startedAt: () => new Date().toISOString(),
    } as unknown as StatusDeps;
    const writer = new StatusWriter(deps);
    await writer.start();
    expect(await readDaemonStatus(remote.indexPath)).toMatchObject({ pid: process.pid });
    // The count started by that first write waits for the scheduler; the stop must not.
    await writer.stop();
  });
});
