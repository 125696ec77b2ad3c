import type { Logger } from '../log/logger.js';

interface Stoppable {
  stop(): Promise<void>;
}

// SIGTERM (systemctl stop) and SIGINT stop cleanly and exit 0; SIGHUP is not a reload yet, so it is logged and ignored.
export function stopOnSignals(daemon: Stoppable, log: Logger): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, `received ${signal}; finishing the lock batch in flight, then stopping`);
      daemon
        .stop()
        .catch((err: unknown) => log.error({ err }, 'error while stopping'))
        // The handlers stay: a second SIGTERM while exiting is ignored rather than killing the process mid-way.
        .finally(resolve);
    };
    const hangup = (): void => {
      log.warn(
        'SIGHUP received: reloading the config is not supported; run `systemctl restart xo-immutable-backups` to apply a changed config',
      );
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    process.on('SIGHUP', hangup);
  });
}
