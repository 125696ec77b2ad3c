import { loadConfig } from '../config/load.js';
import { Daemon } from '../daemon/daemon.js';
import { stopOnSignals } from '../daemon/signals.js';
import { createLogger } from '../log/logger.js';
import { EXIT } from './exit-codes.js';

// `protect`: the long-running daemon that systemd starts. Returns the exit code once a signal has stopped it.
export async function runProtect(configFile: string): Promise<number> {
  const config = loadConfig(configFile);
  const log = createLogger(config.logLevel);
  const daemon = new Daemon({ config, log });
  const stopped = stopOnSignals(daemon, log);
  try {
    await daemon.start();
  } catch (error) {
    await daemon.stop().catch(() => undefined);
    throw error;
  }
  await stopped;
  log.info('stopped');
  return EXIT.ok;
}
