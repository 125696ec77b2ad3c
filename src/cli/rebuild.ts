import { IoctlAdapter } from '../attributes/ioctl.js';
import type { Clock } from '../clock.js';
import { loadConfig } from '../config/load.js';
import type { Config, RemoteConfig } from '../config/schema.js';
import { countByDay } from '../lift/report.js';
import { rebuildIndex } from '../rebuild/rebuild.js';
import { errorsOf, forEachRemote, remoteErrorText, resultsOf } from './each-remote.js';
import { takeTurnWithoutDaemon } from './daemon-turn.js';
import { EXIT } from './exit-codes.js';
import { printJson, type Io } from './io.js';
import { selectRemotes, type RemotesOptions } from './select.js';

export interface RebuildCommandOptions extends RemotesOptions {
  import: string[];
}

// `rebuild-index`: every immutable unit without an entry gets one; the prior art's index is imported on the way.
export async function runRebuild(options: RebuildCommandOptions, io: Io, clock: Clock): Promise<number> {
  const config = loadConfig(options.config);
  const remotes = selectRemotes(config.remotes, options.remote);
  // Capabilities, then the index to itself: run as another user, it refuses before it writes anything.
  const lock = await takeTurnWithoutDaemon(config.indexPath, 'rebuild-index');
  try {
    return await rebuild(config, remotes, options, io, clock);
  } finally {
    lock.release();
  }
}

async function rebuild(
  config: Config,
  remotes: RemoteConfig[],
  options: RebuildCommandOptions,
  io: Io,
  clock: Clock,
): Promise<number> {
  const attributes = new IoctlAdapter();
  const progressLabel = (remote: { id: string }, done: number, total: number): string =>
    `scanning ${remote.id}: ${done}/${total} folders`;
  const outcomes = await forEachRemote(
    remotes,
    config,
    { json: options.json, progressLabel },
    async (context, onProgress) => {
      await context.index.open();
      return rebuildIndex(context, attributes, {
        importFrom: [config.indexPath, ...options.import],
        now: clock.now(),
        onProgress,
      });
    },
  );
  const reports = resultsOf(outcomes);
  const errors = errorsOf(outcomes);
  if (options.json) {
    const remotes = reports.map((r) => ({ ...r, days: Object.fromEntries(countByDay(r.indexed)) }));
    printJson(io, { remotes: [...remotes, ...errors.map(({ remote, ...error }) => ({ remote, error }))] });
  } else {
    for (const r of reports) {
      io.out(
        `remote ${r.remote}: scanned ${r.foldersScanned} folder(s); ${r.indexed.length} immutable unit(s) had no entry and now have one (${r.imported} from the prior art's index)`,
      );
      for (const [day, count] of countByDay(r.indexed)) io.out(`  ${day}  ${count} unit(s)`);
      for (const u of r.undated)
        io.out(
          `  NO DATETIME ${u}: immutable, but its name tells no datetime; not indexed (lift it by hand when no longer needed)`,
        );
      for (const s of r.skippedLegacy) io.out(`  prior-art entry left alone: ${s.path}: ${s.reason}`);
      for (const s of r.skippedFolders) io.out(`  folder not read: ${s.path}: ${s.reason}`);
    }
    for (const e of errors) io.out(remoteErrorText(e));
  }
  return errors.length > 0 || reports.some((r) => r.undated.length > 0) ? EXIT.failure : EXIT.ok;
}
