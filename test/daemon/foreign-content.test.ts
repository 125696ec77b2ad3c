import { execFileSync } from 'node:child_process';
import { chmod, readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { openRemoteContext } from '../../src/context/open.js';
import { writeVmBackup, xoDatetime, type WrittenBackup } from '../../src/demo/sample-remote.js';
import { liftRemote } from '../../src/lift/apply.js';
import { DAY, startDaemon, type LogLine } from '../support/daemon.js';
import { allImmutable, isImmutable, tempRemote, waitFor, type TestRemote } from '../support/remote.js';

// Someone holding XO's credentials: an unprivileged user owning the remote, as XO's NFS or SMB user does.
const ATTACKER = 4242;
const HOUR = 3_600_000;

function asAttacker(script: string, ...args: string[]): void {
  execFileSync(
    'setpriv',
    [`--reuid=${ATTACKER}`, `--regid=${ATTACKER}`, '--clear-groups', 'sh', '-ec', script, 'attacker', ...args],
    { stdio: 'pipe' },
  );
}

// Fails (as the attacker) when the file is locked.
function attackerCanDelete(file: string): boolean {
  try {
    asAttacker('rm -f -- "$1"', file);
    return true;
  } catch {
    return false;
  }
}

async function remoteOwnedByAttacker(): Promise<{ remote: TestRemote; real: WrittenBackup }> {
  const remote = await tempRemote();
  const real = await writeVmBackup(remote.root, {
    vm: 'real',
    datetime: xoDatetime(Date.now() - HOUR),
    disks: [{ type: 'vhd-directory' }],
  });
  await chmod(remote.base, 0o755);
  execFileSync('chown', ['-R', `${ATTACKER}:${ATTACKER}`, remote.root]);
  return { remote, real };
}

// The real VM folder moved into `unit`, then the junk backup completed with a datetime a minute from leaving its
// window (its json's time set back too); returns where the real backup's files are now.
function moveRealInto(remote: TestRemote, real: WrittenBackup, unit: string, complete: string): string[] {
  const realFolder = path.dirname(real.label);
  const moved = path.join(unit, 'vm');
  asAttacker(`mv -- "$1" "$2"\n${complete}`, realFolder, moved);
  return real.units.map((u) => path.join(moved, path.relative(realFolder, u)));
}

async function expectStillProtected(
  remote: TestRemote,
  unit: string,
  movedUnits: string[],
  logs: LogLine[],
): Promise<void> {
  // A minute later the junk backup's window has passed; the real backup's has 23 hours to go.
  const context = await openRemoteContext(
    { id: 'r', root: remote.root, immutabilityDurationMs: DAY, rebuildIndexOnStart: false },
    remote.indexPath,
  );
  await liftRemote(context, new IoctlAdapter(), { now: Date.now() + 5 * 60_000, dryRun: false, all: false });
  for (const file of movedUnits) expect(isImmutable(file), file).toBe(true);
  const json = movedUnits.find((u) => u.endsWith('.json'))!;
  expect(attackerCanDelete(json)).toBe(false);
  expect(await readdir(path.dirname(json))).toContain(path.basename(json));
  expect(logs.find((l) => l.security === true && l.path === unit)?.msg).toMatch(
    /locked, but .*(not part of|immutable while).*locked all the same/,
  );
  // Locked all the same (when in doubt, protect), and lift refused to clear it: the junk stays locked too.
  expect(isImmutable(unit)).toBe(true);
}

describe('a directory unit carrying foreign content', () => {
  it('locks a look-alike VHD directory holding a real VM folder whole, and lift never clears the real backup', async () => {
    const { remote, real } = await remoteOwnedByAttacker();
    const { daemon, logs } = await startDaemon(remote, {
      config: {
        remotes: [{ id: 'r', root: remote.root, immutabilityDurationMs: DAY, rebuildIndexOnStart: false }],
        rescanEveryMs: 200,
      },
    });
    await waitFor(() => allImmutable(real.units), 'the real backup to be locked');

    const soon = Date.now() - DAY + 60_000;
    const T = xoDatetime(soon);
    const junk = path.join(remote.root, 'xo-vm-backups', 'junk');
    const unit = path.join(junk, 'vdis', 'j', 'v', `${T}.vhd`);
    asAttacker(
      'mkdir -p "$1/blocks/0"; for f in header footer bat chunk-filters.json; do echo x > "$1/$f"; done; ' +
        'echo x > "$1/blocks/0/0"',
      unit,
    );
    const json = path.join(junk, `${T}.json`);
    const movedUnits = moveRealInto(
      remote,
      real,
      unit,
      `printf '{"mode":"delta","vhds":{"x":"vdis/j/v/${T}.vhd"}}' > "${json}"; touch -d @${Math.floor(soon / 1000)} "${json}"`,
    );
    // The daemon locks the junk unit with the real backup in it, and says so (a security warning).
    await waitFor(
      () => logs.some((l) => l.security === true && l.path === unit),
      'the daemon to act on the junk backup',
      30_000,
    );
    await daemon.stop();
    await expectStillProtected(remote, unit, movedUnits, logs);
  }, 60_000);

  it('locks a look-alike config date folder holding a real VM folder whole, and lift never clears it', async () => {
    const { remote, real } = await remoteOwnedByAttacker();
    const { daemon, logs } = await startDaemon(remote, {
      config: {
        remotes: [{ id: 'r', root: remote.root, immutabilityDurationMs: DAY, rebuildIndexOnStart: false }],
        rescanEveryMs: 200,
      },
    });
    await waitFor(() => allImmutable(real.units), 'the real backup to be locked');

    const soon = Date.now() - DAY + 60_000;
    const unit = path.join(remote.root, 'xo-config-backups', 'schedule', xoDatetime(soon));
    asAttacker('mkdir -p "$1"; echo "{}" > "$1/data.json"', unit);
    const metadata = path.join(unit, 'metadata.json');
    const movedUnits = moveRealInto(
      remote,
      real,
      unit,
      `printf '{"data":"./data.json"}' > "${metadata}"; touch -d @${Math.floor(soon / 1000)} "${metadata}"`,
    );
    await waitFor(
      () => logs.some((l) => l.security === true && l.path === unit),
      'the daemon to act on the junk backup',
      30_000,
    );
    await daemon.stop();
    await expectStillProtected(remote, unit, movedUnits, logs);
  }, 60_000);
});
