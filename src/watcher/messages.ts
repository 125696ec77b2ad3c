import type { CapLevel } from '../caps.js';
import { errnoCode } from '../errors.js';
import type { Logger } from '../log/logger.js';

// What the watcher logs about its watches: the cap's crossings and a watch that failed.

// Once per crossing: 80% of the cap, the cap, and back below each.
export function logCapCrossed(
  log: Logger,
  crossing: { level: CapLevel; previous: CapLevel; count: number; max: number; rescanEveryMs: number },
): void {
  const { level, previous, count, max } = crossing;
  const late = `up to ${Math.round(crossing.rescanEveryMs / 1000)} s late (rescanEvery)`;
  const fields = { watchedFolders: count, maxWatchedFolders: max, cap: 'maxWatchedFolders' };
  if (level === 'reached')
    log.error(
      fields,
      `watching ${count} folders, the cap (maxWatchedFolders ${max}): new folders are not watched, ` +
        `their backups are locked by the periodic rescan only, ${late}; look for folders nobody made ` +
        '(someone holding XO credentials?) or raise maxWatchedFolders',
    );
  else if (level === 'near' && previous === 'below')
    log.warn(
      fields,
      `watching ${count} folders, ${Math.round((count / max) * 100)}% of the cap (maxWatchedFolders ${max}): ` +
        `at the cap new folders are not watched and their backups are locked by the periodic rescan, ${late}`,
    );
  else
    log.info(
      fields,
      `watching ${count} folders, below ${level === 'near' ? 'the cap' : '80% of the cap'} ` +
        `(maxWatchedFolders ${max}) again`,
    );
}

// `leaves`: the leaf folders known, which sizes the inotify limit to ask for.
export function logWatchError(log: Logger, err: Error, where: string, leaves: number): void {
  if (errnoCode(err) === 'ENOSPC') {
    log.error(
      { err, path: where, watchedFolders: leaves },
      `out of inotify watches while watching ${where}: ` +
        `raise fs.inotify.max_user_watches above ${leaves * 2 + 1024} ` +
        '(sysctl -w fs.inotify.max_user_watches=N, and in /etc/sysctl.d/ to keep it); ' +
        'until then new backups there are found by the periodic rescan only',
    );
    return;
  }
  log.error({ err, path: where }, `watching ${where} failed; new backups there are found by the periodic rescan`);
}
