import { formatBytes } from '../bytes.js';
import type { Clock } from '../clock.js';
import { loadConfig } from '../config/load.js';
import { AppError } from '../errors.js';
import { stageRestore, type StageReport } from '../stage/stage.js';
import { withProgress } from './each-remote.js';
import { EXIT } from './exit-codes.js';
import { printJson, type Io } from './io.js';
import { renderError } from './render.js';
import { selectRemotes } from './select.js';

export interface StageRestoreCommandOptions {
  config: string;
  remote: string;
  vm: string;
  backup?: string;
  to: string;
  dryRun: boolean;
  json: boolean;
}

// `stage-restore`: 0 when staged (or listed), 1 when something on the remote was refused or the copy failed.
export async function runStageRestore(options: StageRestoreCommandOptions, io: Io, clock: Clock): Promise<number> {
  try {
    const config = loadConfig(options.config);
    const [remote] = selectRemotes(config.remotes, options.remote);
    const label = (done: number, total: number): string =>
      `staging: ${formatBytes(done)} of ${formatBytes(total)} copied and read back`;
    const report = await withProgress(!options.json && !options.dryRun, label, (onProgress) =>
      stageRestore({
        remote: remote!,
        remotes: config.remotes,
        vm: options.vm,
        backup: options.backup,
        to: options.to,
        dryRun: options.dryRun,
        now: clock.now(),
        jsonSettleMs: config.jsonSettleMs,
        onProgress,
      }),
    );
    if (options.json) printJson(io, { ok: report.refusals.length === 0, ...report });
    else for (const line of describe(report)) io.out(line);
    return report.refusals.length === 0 ? EXIT.ok : EXIT.failure;
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    const rendered = renderError(error, options.json);
    if (options.json) io.out(rendered.text);
    else io.err(rendered.text);
    return rendered.exitCode;
  }
}

function describe(report: StageReport): string[] {
  const lines = [
    `remote ${report.remote}, VM ${report.vm}: backup ${report.backup}${report.encrypted ? ' (encrypted remote: ciphertext copied as is)' : ''}`,
  ];
  for (const group of groups(report)) lines.push(`  ${group.path}  ${formatBytes(group.bytes)}${group.detail}`);
  for (const note of report.notes) lines.push(`note: ${note}`);
  for (const refusal of report.refusals) lines.push(`  REFUSED ${refusal.path}: ${refusal.reason}`);
  const files = `${report.files.length} file(s), ${formatBytes(report.bytes)}`;
  if (report.refusals.length > 0) {
    lines.push(
      `nothing was copied: ${report.refusals.length} thing(s) on the remote are not what XO writes; ` +
        'someone with access to the remote may have planted them: investigate before restoring from it',
    );
    return lines;
  }
  if (report.dryRun) {
    lines.push(
      `would stage ${files} into ${report.to}; free there: ${formatBytes(report.freeBytes)}; ` +
        (report.sameFilesystemAsRemote
          ? 'same filesystem as the remote: shared by reflink if it supports them (xfs, btrfs), else copied'
          : 'another filesystem than the remote: every byte is copied'),
    );
    return lines;
  }
  lines.push(
    `staged ${files} into ${report.to} (${formatBytes(report.reflinkedBytes)} shared by reflink, ` +
      `${formatBytes(report.copiedBytes)} copied); every file read back identical to the remote`,
    `next: add ${report.to} as a new remote in XO (Settings > Remotes; over NFS or SMB, export that folder), ` +
      'restore the backup from it, then remove that remote in XO and delete the folder. The originals stay locked.',
  );
  return lines;
}

// A VHD directory is one line (its files summed); every other file its own.
function groups(report: StageReport): { path: string; bytes: number; detail: string }[] {
  const byUnit = new Map<string, { path: string; bytes: number; files: number; methods: Set<string> }>();
  for (const file of report.files) {
    const match = /^(.*?\.vhd)\/./.exec(file.path);
    const key = match === null ? file.path : `${match[1]}/`;
    const group = byUnit.get(key) ?? { path: key, bytes: 0, files: 0, methods: new Set<string>() };
    group.bytes += file.bytes;
    group.files += 1;
    if (file.method !== undefined) group.methods.add(file.method);
    byUnit.set(key, group);
  }
  return [...byUnit.values()].map((g) => ({
    path: g.path,
    bytes: g.bytes,
    detail:
      (g.path.endsWith('/') ? ` (${g.files} files)` : '') + (g.methods.size > 0 ? `  ${[...g.methods].join('+')}` : ''),
  }));
}
