import path from 'node:path';
import { isDatetimeName, parseBackupDatetime } from '../remote/datetime.js';
import { isInWindow } from '../remote/model.js';
import type { HeldRemote } from '../remote/held.js';
import { examine, type Examined } from '../remote/read.js';
import { judgeCompletion, METADATA_LIMIT } from '../backup/completion.js';
import type { BackupRef, LeafFolder } from './context.js';
import { futureWarning } from './arrival.js';
import type { FolderReport, ReconcileOptions } from './folder-report.js';
import { addRequest, isLockedAsIndexed, refusalFor, windowOfBackup } from './request.js';

// A config or pool metadata date folder: complete once its metadata.json is, then locked whole.
export async function reconcileDateFolder(
  folder: LeafFolder,
  held: HeldRemote,
  options: ReconcileOptions,
  report: FolderReport,
): Promise<void> {
  const name = path.basename(folder.path);
  const named = parseBackupDatetime(name);
  if (!isDatetimeName(name) || named === undefined) return;
  // By name, a folder past its window by name is never looked at.
  if (folder.remote.windowStart === 'name' && !isInWindow(named, options.now, folder.remote.windowMs)) {
    report.pastWindow = 1;
    return;
  }
  // Dated as a VM backup is (protect/arrival.ts), its arrival recorded by the folder's identity.
  const metadata = path.join(folder.path, 'metadata.json');
  const examined = examineAt(held, metadata);
  if (examined?.type !== 'file') {
    // A link or a special file where XO writes its json: said, as any unit's would be (XO would read through it).
    const refusal = examined === undefined ? undefined : refusalFor(metadata, examined);
    if (refusal !== undefined) report.refusals.push(refusal);
    return;
  }
  const self = examineAt(held, folder.path);
  if (self === undefined) return;
  const anchor = { path: folder.path, examined: self };
  const { instant, arrived, namedInTheFuture } = await windowOfBackup(folder, named, examined, anchor, options);
  report.pastWindow = isInWindow(instant, options.now, folder.remote.windowMs) ? 0 : 1;
  if (report.pastWindow === 1) return;
  if (namedInTheFuture)
    (report.warnings ??= []).push({ path: folder.path, security: true, reason: futureWarning(name, instant) });
  const backup = (completedAt: number): BackupRef => ({
    label: folder.path,
    datetime: name,
    instant,
    completedAt,
    ...(namedInTheFuture ? { namedInTheFuture } : {}),
    ...(arrived === undefined ? {} : { arrived }),
  });
  // Already locked and unchanged: done without reading metadata.json again (a full proof reads its flag).
  if (await isLockedAsIndexed(folder.remote.index, instant, folder.path, self)) {
    if (options.full === true)
      report.flagsToRead = [{ unit: folder.path, examined: self, recursive: true, backup: backup(examined.mtimeMs) }];
    return;
  }
  const completion = judgeCompletion(
    held.readSmall(held.relativeOf(metadata) as string, METADATA_LIMIT)?.toString('utf8'),
    examined.size,
    examined.mtimeMs,
    options.now,
    options.jsonSettleMs,
  );
  if (!completion.complete) {
    if (completion.recheckAt !== undefined) report.recheckAt = completion.recheckAt;
    return;
  }
  const unit = { unit: folder.path, examined: self, recursive: true, backup: backup(completion.completedAt) };
  addRequest(report, folder, unit);
}

// The entry itself, through the folders held; undefined when gone. A folder on its way swapped for a link throws
// REMOTE_LINK_ON_PATH (reconcile.ts refuses the folder): nothing is read through it.
export function examineAt(held: HeldRemote, file: string): Examined | undefined {
  return examine(held, held.relativeOf(file) as string);
}
