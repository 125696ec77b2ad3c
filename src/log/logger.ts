import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import type { LogLevel } from '../config/schema.js';

// The only importer of pino. Modules receive a Logger (usually log.child({ module })) and never build their own.
export type Logger = PinoLogger;

// JSON lines on stdout by default: journald stores them and `journalctl -o cat` shows them as written.
export function createLogger(level: LogLevel | 'silent', destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'xo-immutable-backups' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
