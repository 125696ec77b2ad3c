import path from 'node:path';
import { isDatetimeName, parseBackupDatetime } from '../remote/datetime.js';
import { isInWindow } from '../remote/model.js';
import { examine, readSmallFile } from '../remote/read.js';
import { judgeCompletion, METADATA_LIMIT } from '../backup/completion.js';
import type { BackupRef, LeafFolder } from './context.js';
import { arrivalOf, futureWarning, isNamedInTheFuture } from './future.js';
import type { FolderReport, ReconcileOptions } from './reconcile.js';
import { addRequest, isLockedAsIndexed } from './request.js';

// A config or pool metadata date folder: complete once its metadata.json is, then locked whole.
export async function reconcileDateFolder(
  folder: LeafFolder,
  options: ReconcileOptions,
  report: FolderReport,
): Promise<void> {
  const name = path.basename(folder.path);
  const named = parseBackupDatetime(name);
  if (!isDatetimeName(name) || named === undefined) return;
  // Named in the future: dated by its arrival, as a VM backup is (protect/future.ts).
  const namedInTheFuture = isNamedInTheFuture(named, options);
  if (!namedInTheFuture && !isInWindow(named, options.now, folder.remote.durationMs)) return;
  const metadata = path.join(folder.path, 'metadata.json');
  const examined = await examine(metadata);
  if (examined?.type !== 'file') return;
  const instant = namedInTheFuture ? arrivalOf(examined, options.now) : named;
  if (!isInWindow(instant, options.now, folder.remote.durationMs)) return;
  if (namedInTheFuture)
    (report.warnings ??= []).push({ path: folder.path, security: true, reason: futureWarning(name, instant) });
  const self = await examine(folder.path);
  if (self === undefined) return;
  const backup = (completedAt: number): BackupRef => ({
    label: folder.path,
    datetime: name,
    instant,
    completedAt,
    ...(namedInTheFuture ? { namedInTheFuture } : {}),
  });
  // Already locked and unchanged: done without reading metadata.json again (a full proof reads its flag).
  if (await isLockedAsIndexed(folder, instant, folder.path, self)) {
    if (options.full === true)
      report.flagsToRead = [{ unit: folder.path, examined: self, recursive: true, backup: backup(examined.mtimeMs) }];
    return;
  }
  const completion = judgeCompletion(
    await readSmallFile(metadata, METADATA_LIMIT),
    examined.size,
    examined.mtimeMs,
    options.now,
    options.jsonSettleMs,
  );
  if (!completion.complete) {
    if (completion.recheckAt !== undefined) report.recheckAt = completion.recheckAt;
    return;
  }
  addRequest(folder, folder.path, self, true, backup(completion.completedAt), report, true);
}
