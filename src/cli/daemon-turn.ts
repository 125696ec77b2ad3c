import type { Clock } from '../clock.js';
import { AppError } from '../errors.js';
import { isDaemonRunning, readDaemonStatus, type DaemonStatus } from '../status/daemon-status.js';

// lift and rebuild-index write the index and change +i: beside a running daemon they would race its lock batches
// (an entry rewritten while a batch records its identity). They take their turn only while it is stopped.
export async function assertDaemonStopped(indexPath: string, clock: Clock, command: string): Promise<void> {
  const status = await runningDaemon(indexPath, clock);
  if (status === undefined) return;
  throw new AppError(
    'DAEMON_RUNNING',
    `The protection daemon is running (pid ${status.pid}): ${command} refuses to race it`,
    {
      value: status.pid,
      hint:
        'stop it first (systemctl stop xo-immutable-backups), run the command, then start it again; ' +
        'the daemon itself lifts at start and every liftEvery, and `lift --dry-run` works while it runs',
    },
  );
}

export async function runningDaemon(indexPath: string, clock: Clock): Promise<DaemonStatus | undefined> {
  const status = await readDaemonStatus(indexPath);
  return isDaemonRunning(status, clock.now()) ? status : undefined;
}
