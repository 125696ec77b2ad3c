import os from 'node:os';
import type { Clock } from '../clock.js';
import { loadConfig } from '../config/load.js';
import { heldUntil, holdJson, parseVm, type Hold } from '../holds/rules.js';
import { HoldStore } from '../holds/store.js';
import { createLogger } from '../log/logger.js';
import { runningDaemon } from './daemon-turn.js';
import { EXIT } from './exit-codes.js';
import { printJson, type Io } from './io.js';
import { selectRemotes, type RemotesOptions } from './select.js';

export interface HoldEndOptions {
  config: string;
  remote: string;
  vm: string;
  json: boolean;
}

// Ending a hold gives protection back: no confirmation. The running daemon sees it within a second and locks again.
export async function runHoldEnd(options: HoldEndOptions, io: Io): Promise<number> {
  const config = loadConfig(options.config);
  const [remote] = selectRemotes(config.remotes, options.remote);
  const vm = parseVm(options.vm);
  const holds = new HoldStore(config.indexPath, remote!.id);
  const hold = holds.read(vm);
  const ended = holds.remove(vm);
  const by = adminName();
  if (ended) {
    createLogger('info', process.stderr)
      .child({ module: 'hold', remote: remote!.id, vm })
      .warn({ by, security: true, until: hold?.until }, `hold on VM ${vm} ended early by ${by}`);
  }
  const daemon = await runningDaemon(config.indexPath);
  if (options.json) {
    printJson(io, { remote: remote!.id, vm, ended, daemonRunning: daemon !== undefined });
    return EXIT.ok;
  }
  const next =
    daemon === undefined
      ? 'the daemon is not running: it locks them again when it starts'
      : `the running daemon (pid ${daemon.pid}) locks them again now`;
  io.out(
    ended ? `remote ${remote!.id}: hold on VM ${vm} ended; ${next}` : `remote ${remote!.id}: VM ${vm} was not held`,
  );
  return EXIT.ok;
}

// Who runs the command, as the audit line and the hold name them: the admin behind sudo, or the user.
export function adminName(): string {
  return process.env.SUDO_USER ?? os.userInfo().username;
}

// Every hold on file. One past its end stays on file until a daemon runs: it is listed as ended.
export function runHoldList(options: RemotesOptions, io: Io, clock: Clock): number {
  const config = loadConfig(options.config);
  const now = clock.now();
  const remotes = selectRemotes(config.remotes, options.remote).map((remote) => {
    const store = new HoldStore(config.indexPath, remote.id);
    const holds = store.list().map((hold) => ({
      hold,
      ended: heldUntil(hold, now) === undefined,
      acknowledged: store.seenId(hold.vm) === hold.id,
    }));
    return { remote: remote.id, holds };
  });
  if (options.json) {
    const json = remotes.map((r) => ({
      remote: r.remote,
      holds: r.holds.map((h) => ({ ...holdJson(h.hold), ended: h.ended, acknowledged: h.acknowledged })),
    }));
    printJson(io, { remotes: json });
    return EXIT.ok;
  }
  for (const { remote, holds } of remotes) {
    if (holds.length === 0) io.out(`remote ${remote}: no VM held`);
    for (const { hold, ended, acknowledged } of holds) io.out(describeHold(remote, hold, ended, acknowledged));
  }
  return EXIT.ok;
}

function describeHold(remote: string, hold: Hold, ended: boolean, acknowledged: boolean): string {
  const state = ended
    ? 'ENDED: the daemon locks it again when it runs'
    : `HELD until ${hold.until}, NOT PROTECTED${acknowledged ? '' : ' (not yet acknowledged by a daemon)'}`;
  const detail = [`since ${hold.since} by ${hold.by}`, ...(hold.backup === undefined ? [] : [`backup ${hold.backup}`])];
  return (
    `remote ${remote}: VM ${hold.vm} ${state}\n  ${detail.join(', ')}` +
    (hold.reason === undefined ? '' : `\n  reason: ${hold.reason}`)
  );
}
