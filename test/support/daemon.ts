import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { AttributesAdapter } from '../../src/attributes/adapter.js';
import type { Clock } from '../../src/clock.js';
import type { Config } from '../../src/config/schema.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { createLogger } from '../../src/log/logger.js';
import { stopBeforeCleanup, type TestRemote } from './remote.js';

export const DAY = 86_400_000;

export interface LogLine {
  level: string;
  msg: string;
  [key: string]: unknown;
}

export interface RunningDaemon {
  daemon: Daemon;
  logs: LogLine[];
  config: Config;
}

export function testConfig(remote: TestRemote, overrides: Partial<Config> = {}): Config {
  return {
    indexPath: remote.indexPath,
    liftEveryMs: 3_600_000,
    rescanEveryMs: 3_600_000,
    jsonSettleMs: 5_000,
    maxClockJumpMs: 86_400_000,
    metricsFile: undefined,
    logLevel: 'debug',
    protectChains: true,
    remotes: [{ id: 'r', root: remote.root, immutabilityDurationMs: 7 * DAY, rebuildIndexOnStart: false }],
    ...overrides,
  };
}

// The real daemon in this process, logging into an array the test can read (as pino's own tests read a sink).
export async function startDaemon(
  remote: TestRemote,
  options: {
    config?: Partial<Config>;
    clock?: Clock;
    attributes?: AttributesAdapter;
    watch?: boolean;
    healthCheckEveryMs?: number;
    relistEveryMs?: number;
    retryDelayMs?: number;
  } = {},
): Promise<RunningDaemon> {
  const logs: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') logs.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  const config = testConfig(remote, options.config);
  const daemon = new Daemon({
    config,
    log: createLogger(config.logLevel, sink),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.attributes ? { attributes: options.attributes } : {}),
    ...(options.watch === false ? { watch: false } : {}),
    ...(options.healthCheckEveryMs === undefined ? {} : { healthCheckEveryMs: options.healthCheckEveryMs }),
    ...(options.relistEveryMs === undefined ? {} : { relistEveryMs: options.relistEveryMs }),
    ...(options.retryDelayMs === undefined ? {} : { retryDelayMs: options.retryDelayMs }),
  });
  stopBeforeCleanup(() => daemon.stop());
  await daemon.start();
  return { daemon, logs, config };
}

export interface ProtectProcess {
  child: ChildProcess;
  // Resolves with the exit code (null when killed by a signal).
  exited: Promise<number | null>;
  readonly stdout: () => string;
}

// The real CLI's daemon in its own process, as systemd runs it. Whatever the test does, it is killed and gone before
// the cleanup unlocks and removes the remote.
export function spawnProtect(config: string, onOutput?: (stdout: string) => void): ProtectProcess {
  const child = spawn(process.execPath, [path.resolve('bin/xo-immutable-backups.js'), 'protect', '--config', config], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  stopBeforeCleanup(async () => {
    child.kill('SIGKILL');
    await exited;
  });
  let stdout = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    onOutput?.(stdout);
  });
  return { child, exited, stdout: () => stdout };
}
