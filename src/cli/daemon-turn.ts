import { assertCapabilities } from '../attributes/capability.js';
import { AppError } from '../errors.js';
import { refusal } from '../daemon/instance-lock.js';
import { HEARTBEAT_STALE_MS, readDaemonStatus } from '../status/daemon-status.js';
import {
  DAEMON_COMMAND,
  lockHolder,
  processExists,
  takeInstanceLock,
  type InstanceLock,
  type LockHolder,
} from '../lock/instance-lock.js';

// A command's turn at the index: it holds the instance lock for its run (a daemon started meanwhile is refused
// until it ends), or a daemon holds it and the command may only go through the daemon (a repair lift's hold).
export type IndexTurn = { lock: InstanceLock; daemon?: undefined } | { lock?: undefined; daemon: LockHolder };

// For the commands that write the index and change +i (lift, rebuild-index, hold start): capabilities first, so that
// a process that could not do the job writes nothing; then the lock. Another command holding it refuses this one.
export async function takeIndexTurn(indexPath: string, command: string): Promise<IndexTurn> {
  assertCapabilities();
  const attempt = await takeInstanceLock(indexPath, command);
  if ('lock' in attempt) {
    const unlocked = await daemonOfAnEarlierRelease(indexPath);
    if (unlocked === undefined) return { lock: attempt.lock };
    attempt.lock.release();
    return { daemon: unlocked };
  }
  const holder = attempt.holder;
  if (holder?.command === DAEMON_COMMAND) return { daemon: holder };
  if (holder === undefined) throw refusal(indexPath, undefined);
  throw new AppError(
    'INDEX_BUSY',
    `\`${holder.command}\` (pid ${holder.pid}, since ${holder.since}) is using the index at ${indexPath}`,
    { value: holder.pid, hint: `wait for it to end, then run ${command} again` },
  );
}

// A daemon of a release without the lock (running on through an upgrade until it is restarted) holds nothing: its
// fresh heartbeat from a live process, not stopped, still says it runs.
async function daemonOfAnEarlierRelease(indexPath: string): Promise<LockHolder | undefined> {
  const status = await readDaemonStatus(indexPath);
  const running =
    status !== undefined &&
    status.stoppedAt === undefined &&
    status.pid !== process.pid &&
    processExists(status.pid) &&
    Date.now() - Date.parse(status.heartbeat) < HEARTBEAT_STALE_MS;
  return running ? { pid: status.pid, command: DAEMON_COMMAND, since: status.startedAt } : undefined;
}

// lift and rebuild-index beside a running daemon would race its lock batches (an entry rewritten while a batch
// records its identity): refused, with what to do.
export async function takeTurnWithoutDaemon(indexPath: string, command: string): Promise<InstanceLock> {
  const turn = await takeIndexTurn(indexPath, command);
  if (turn.lock !== undefined) return turn.lock;
  throw daemonRunning(turn.daemon, command);
}

export function daemonRunning(daemon: LockHolder, command: string): AppError {
  return new AppError(
    'DAEMON_RUNNING',
    `The protection daemon is running (pid ${daemon.pid}): ${command} refuses to race it`,
    {
      value: daemon.pid,
      hint:
        'stop it first (systemctl stop xo-immutable-backups, or kill ' +
        `${daemon.pid} if it was started by hand), run the command, then start it again; ` +
        'the daemon itself lifts at start and every liftEvery, and `lift --dry-run` works while it runs',
    },
  );
}

// The daemon holding the index now, if one does (what a command that needs no turn says about it).
export async function runningDaemon(indexPath: string): Promise<LockHolder | undefined> {
  const holder = await lockHolder(indexPath);
  return holder !== 'free' && holder?.command === DAEMON_COMMAND ? holder : undefined;
}
