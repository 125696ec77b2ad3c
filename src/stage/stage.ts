import { fchmodSync, fchownSync, mkdirSync, statSync } from 'node:fs';
import type { RemoteConfig } from '../config/schema.js';
import { AppError } from '../errors.js';
import { readVmSnapshot } from '../backup/snapshot.js';
import { settleTimeFor } from '../backup/completion.js';
import { HeldRemote } from '../remote/held.js';
import { readingOf } from '../remote/encryption.js';
import { resolveRemoteRoot } from '../remote/root.js';
import { copyVerified, type CopyMethod } from './copy.js';
import { gatherBackup } from './gather.js';
import { judgeTarget, planCopy, type Refusal, type SourceEntry } from './plan.js';
import { entryOf, NotAFolder, TargetTree, walk } from './source.js';
import { inspectTarget, protectedRoots } from './target.js';

// What XO reads at a remote's root before it lists backups: on an encrypted remote, the algorithm (plain) and the
// canary it decrypts (without it XO refuses the folder: "Remote directory must be empty.").
const ROOT_FILES = ['encryption.json', 'metadata.json'];

export interface StageOptions {
  remote: RemoteConfig;
  // Every configured remote: the target must be inside none of them.
  remotes: readonly RemoteConfig[];
  vm: string;
  backup?: string;
  to: string;
  dryRun: boolean;
  now: number;
  jsonSettleMs: number;
  onProgress?: (done: number, total: number) => void;
}

export interface StagedFile {
  // Relative to the target, as on the remote.
  path: string;
  bytes: number;
  method?: CopyMethod;
}

export interface StageReport {
  remote: string;
  vm: string;
  backup: string;
  encrypted: boolean;
  to: string;
  dryRun: boolean;
  // Nothing is copied while there is a refusal.
  staged: boolean;
  files: StagedFile[];
  bytes: number;
  reflinkedBytes: number;
  copiedBytes: number;
  freeBytes: number;
  sameFilesystemAsRemote: boolean;
  notes: string[];
  refusals: Refusal[];
}

// stage-restore: one backup and everything its restore needs, copied out of the remote into a new folder laid out as
// an XO remote, mutable, verified; the remote is only read (the daemon may run, the originals stay locked).
export async function stageRestore(options: StageOptions): Promise<StageReport> {
  assertVmName(options.vm);
  const realRoot = await resolveRemoteRoot(options.remote);
  const target = await inspectTarget(options.to, realRoot);
  const problem = judgeTarget(target, await protectedRoots(options.remotes));
  if (problem !== undefined)
    throw new AppError('STAGE_TARGET_REFUSED', problem.message, { value: options.to, hint: problem.hint });
  const reading = await readingOf(options.remote, { root: options.remote.root, realRoot });
  // Ciphertext is copied as is (the staged copy is opened by XO with its key); with the key file, chains are read.
  const encrypted = reading.encrypted || reading.decrypt !== undefined;
  const source = HeldRemote.open({ root: options.remote.root, realRoot, ...reading });
  try {
    const gathered = gatherBackup(await readVmSnapshot(source, options.vm, reading.encrypted), {
      ...(options.backup === undefined ? {} : { backup: options.backup }),
      now: options.now,
      settleMs: settleTimeFor(reading.encrypted, options.jsonSettleMs),
    });
    const refusals = [...gathered.problems];
    const owner = source.lstat(`xo-vm-backups/${options.vm}`)?.uid;
    const plan = planCopy(sourceEntries(source, gathered, encrypted, refusals), owner);
    refusals.push(...plan.refusals);
    for (const file of plan.secondNames)
      gathered.notes.push(
        `${file} has a second hard link (someone gave it another name on the remote): copied, it is XO's own file`,
      );
    const report: StageReport = {
      remote: options.remote.id,
      vm: options.vm,
      backup: gathered.backup.datetime,
      encrypted,
      to: target.absolute,
      dryRun: options.dryRun,
      staged: false,
      files: plan.files.map((f) => ({ ...f })),
      bytes: plan.bytes,
      reflinkedBytes: 0,
      copiedBytes: 0,
      freeBytes: target.freeBytes,
      sameFilesystemAsRemote: target.sameFilesystemAsRemote,
      notes: gathered.notes,
      refusals,
    };
    if (refusals.length > 0 || options.dryRun) return report;

    const destination = openTarget(target.absolute, target.real, realRoot);
    try {
      await copyAll(source, destination, plan.directories, report, options.onProgress);
    } finally {
      destination.close();
    }
    report.staged = true;
    return report;
  } finally {
    source.close();
  }
}

// What the backup needs, file by file: the remote's set-up files, then each unit walked; a unit refused (a link, a
// foreign thing where a folder should be) joins `refusals`.
function sourceEntries(
  source: HeldRemote,
  gathered: ReturnType<typeof gatherBackup>,
  encrypted: boolean,
  refusals: StageReport['refusals'],
): SourceEntry[] {
  const entries: SourceEntry[] = [];
  for (const name of ROOT_FILES) {
    const entry = entryOf(source, name);
    if (entry !== undefined) entries.push(entry);
    else if (encrypted)
      gathered.notes.push(`the remote has no ${name}: XO may refuse to open the staged copy as an encrypted remote`);
  }
  for (const unit of gathered.units) {
    try {
      entries.push(...walk(source, unit));
    } catch (error) {
      if (!(error instanceof NotAFolder)) throw error;
      refusals.push({ path: error.path, reason: error.reason });
    }
  }
  return entries;
}

// The folders made, then each file copied and read back; the report says how each was copied.
async function copyAll(
  source: HeldRemote,
  destination: ReturnType<typeof openTarget>,
  directories: readonly string[],
  report: StageReport,
  onProgress: StageOptions['onProgress'],
): Promise<void> {
  for (const directory of directories) {
    const stats = source.lstat(directory);
    if (stats === undefined) throw vanished(directory);
    destination.makeFolder(directory, stats.mode, stats.uid, stats.gid);
  }
  let done = 0;
  onProgress?.(0, report.bytes);
  for (const file of report.files) {
    file.method = await copyVerified(source, destination, file.path, (bytes) => {
      done += bytes;
      onProgress?.(done, report.bytes);
    });
    if (file.method === 'reflink') report.reflinkedBytes += file.bytes;
    else report.copiedBytes += file.bytes;
  }
}

// A uuid-like name of a folder in xo-vm-backups/: never a path, a dot name or empty.
function assertVmName(vm: string): void {
  if (vm === '' || vm.includes('/') || vm.includes('\0') || vm.startsWith('.'))
    throw new AppError('USAGE', `--vm "${vm}" is not a VM uuid`, {
      value: vm,
      hint: 'give the name of a folder in <remote root>/xo-vm-backups/',
    });
}

// The target, created when missing (owned and moded as the remote's root), then opened and checked empty again.
function openTarget(absolute: string, real: string, remoteRealRoot: string): TargetTree {
  const created = mkdirSync(absolute, { recursive: true, mode: 0o700 }) !== undefined;
  const tree = TargetTree.open(absolute, real);
  if (tree.list('').length > 0) {
    tree.close();
    throw new AppError('STAGE_TARGET_REFUSED', `${absolute} is no longer empty`, {
      value: absolute,
      hint: 'something else is writing there: name a new folder',
    });
  }
  const top = tree.folder('');
  if (created && top !== undefined) {
    const root = statSync(remoteRealRoot);
    fchownSync(top, root.uid, root.gid);
    fchmodSync(top, root.mode & 0o7777);
  }
  return tree;
}

function vanished(relative: string): AppError {
  return new AppError('STAGE_COPY_FAILED', `${relative} vanished from the remote while it was staged`, {
    value: relative,
    hint: 'XO may be pruning this VM (retention or a merge): stage again, or a backup inside its window',
  });
}
