import { AppError } from '../errors.js';
import { DAEMON_COMMAND, takeInstanceLock, type InstanceLock, type LockHolder } from '../lock/instance-lock.js';
import type { Logger } from '../log/logger.js';
import type { Service } from './service.js';

// One daemon per index: the first service taken and the last released, so nothing of a second daemon on the same
// config (status heartbeat, index, lift passes) ever runs beside the first. The lock outlives a crash of nobody.
export class InstanceLockService implements Service {
  readonly name = 'instance-lock';
  readonly #indexPath: string;
  readonly #log: Logger;
  #lock: InstanceLock | undefined;
  #taking: Promise<void> | undefined;
  #stopped = false;

  constructor(deps: { indexPath: string; log: Logger }) {
    this.#indexPath = deps.indexPath;
    this.#log = deps.log;
  }

  async start(): Promise<void> {
    this.#taking = this.#take();
    await this.#taking;
  }

  async #take(): Promise<void> {
    const attempt = await takeInstanceLock(this.#indexPath, DAEMON_COMMAND);
    if ('holder' in attempt) throw refusal(this.#indexPath, attempt.holder);
    this.#lock = attempt.lock;
    // A stop while the lock was being taken: it is not kept.
    if (this.#stopped) this.#release();
    else this.#log.debug({ file: attempt.lock.file }, 'instance lock taken');
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#taking?.catch(() => undefined);
    this.#release();
  }

  #release(): void {
    this.#lock?.release();
    this.#lock = undefined;
  }
}

// Exit 3 (a start-up check): under systemd the unit is started again every 10 s, and so starts once the other ends.
export function refusal(indexPath: string, holder: LockHolder | undefined): AppError {
  if (holder === undefined)
    return new AppError('INDEX_LOCKED', `Another process holds the lock on the index at ${indexPath}`, {
      value: indexPath,
      hint: `find it with \`fuser -v ${indexPath}/daemon.lock\`; stop it (systemctl stop xo-immutable-backups, or kill it)`,
    });
  if (holder.command === DAEMON_COMMAND)
    return new AppError(
      'INDEX_LOCKED',
      `Another daemon (pid ${holder.pid}, since ${holder.since}) already protects the remotes of the index at ${indexPath}`,
      {
        value: holder.pid,
        hint:
          'one daemon per config: this one stops here and the running one goes on. To replace it, stop it first: ' +
          `systemctl stop xo-immutable-backups (or kill ${holder.pid} if it was started by hand)`,
      },
    );
  return new AppError(
    'INDEX_LOCKED',
    `\`${holder.command}\` (pid ${holder.pid}, since ${holder.since}) is using the index at ${indexPath}`,
    {
      value: holder.pid,
      hint: `start the daemon when it ends (under systemd it is started again every 10 s); or stop it: kill ${holder.pid}`,
    },
  );
}
