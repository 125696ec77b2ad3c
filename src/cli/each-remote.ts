import type { Config, RemoteConfig } from '../config/schema.js';
import { openRemoteContext } from '../context/open.js';
import type { RemoteContext } from '../context/remote-context.js';
import { AppError } from '../errors.js';

export type Progress = (done: number, total: number) => void;

// A progress line on stderr while `run` runs, at a terminal only and when `shown` (never with --json); cleared after.
export async function withProgress<T>(
  shown: boolean,
  label: (done: number, total: number) => string,
  run: (progress: Progress | undefined) => Promise<T>,
): Promise<T> {
  if (!shown || !process.stderr.isTTY) return run(undefined);
  try {
    return await run((done, total) => process.stderr.write(`\r${label(done, total)}`));
  } finally {
    process.stderr.write('\r\x1b[K');
  }
}

export interface RemoteError {
  remote: string;
  code: string;
  message: string;
  hint: string;
}

// The loop of every command that acts on remotes one after the other: each opened the same way, a progress line on
// a terminal (never with --json), and an AppError recorded against its remote instead of stopping the others.
export type Outcome<R> = { remote: string; result: R; error?: undefined } | { remote: string; error: RemoteError };

export async function forEachRemote<R>(
  remotes: readonly RemoteConfig[],
  config: Config,
  options: { json: boolean; progressLabel: (remote: RemoteConfig, done: number, total: number) => string },
  run: (context: RemoteContext, progress: Progress | undefined) => Promise<R>,
): Promise<Outcome<R>[]> {
  const outcomes: Outcome<R>[] = [];
  for (const remote of remotes) {
    const label = (done: number, total: number): string => options.progressLabel(remote, done, total);
    try {
      const context = await openRemoteContext(remote, config.indexPath);
      outcomes.push({ remote: remote.id, result: await withProgress(!options.json, label, (p) => run(context, p)) });
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      const { code, message, hint } = error;
      outcomes.push({ remote: remote.id, error: { remote: remote.id, code, message, hint } });
    }
  }
  return outcomes;
}

export function resultsOf<R>(outcomes: readonly Outcome<R>[]): R[] {
  return outcomes.flatMap((o) => (o.error === undefined ? [o.result] : []));
}

export function errorsOf(outcomes: readonly Outcome<unknown>[]): RemoteError[] {
  return outcomes.flatMap((o) => (o.error === undefined ? [] : [o.error]));
}

// A remote's error as the text output names it.
export function remoteErrorText(e: RemoteError): string {
  return `remote ${e.remote}: error [${e.code}]: ${e.message}\n  what to do: ${e.hint}`;
}
