import { constants } from 'node:os';

export interface Interrupt {
  signal: AbortSignal;
  dispose(): void;
}

// SIGINT and SIGTERM abort a command that has something to undo (the demo's locked folder) instead of killing it.
// Later signals are ignored until dispose(): dying while cleaning up would leave what the first one set out to clean.
export function abortOnSignals(): Interrupt {
  const controller = new AbortController();
  const abort = (signal: NodeJS.Signals): void => {
    if (!controller.signal.aborted) controller.abort(signal);
  };
  process.on('SIGINT', abort);
  process.on('SIGTERM', abort);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', abort);
      process.off('SIGTERM', abort);
    },
  };
}

// The shell's convention for a process ended by a signal: 128 + its number (130 for SIGINT, 143 for SIGTERM).
export function exitCodeOfSignal(signal: unknown): number {
  const number = typeof signal === 'string' ? constants.signals[signal as NodeJS.Signals] : undefined;
  return 128 + (number ?? constants.signals.SIGTERM);
}
