import { formatBytes } from '../bytes.js';
import type { Command } from 'commander';
import { systemClock, type Clock } from '../clock.js';
import { loadConfig } from '../config/load.js';
import { AppError } from '../errors.js';
import type { StageReport } from '../stage/stage.js';
import { configOption, exitCodes, type SetExit } from './command-help.js';
import { EXIT } from './exit-codes.js';
import type { Io } from './io.js';
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
    const progress =
      !options.json && !options.dryRun && process.stderr.isTTY
        ? (done: number, total: number) =>
            process.stderr.write(`\rstaging: ${formatBytes(done)} of ${formatBytes(total)} copied and read back`)
        : undefined;
    let report: StageReport;
    try {
      // Imported when it runs: the daemon and --help do not load stage/.
      const { stageRestore } = await import('../stage/stage.js');
      report = await stageRestore({
        remote: remote!,
        remotes: config.remotes,
        vm: options.vm,
        ...(options.backup === undefined ? {} : { backup: options.backup }),
        to: options.to,
        dryRun: options.dryRun,
        now: clock.now(),
        jsonSettleMs: config.jsonSettleMs,
        ...(progress === undefined ? {} : { onProgress: progress }),
      });
    } finally {
      if (progress) process.stderr.write('\r\x1b[K');
    }
    if (options.json) io.out(JSON.stringify({ ok: report.refusals.length === 0, ...report }, null, 2));
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

export function addStageRestoreCommand(program: Command, io: Io, setExit: SetExit): void {
  program
    .command('stage-restore')
    .description(
      "Copy one backup of a VM, with every file its restore needs (its json, each disk's whole VHD chain), out of a " +
        'protected remote into a new folder laid out as an XO remote, mutable, so XO restores from it while the ' +
        'originals stay locked (flat-VHD remotes: XO cannot restore a locked .vhd in place).',
    )
    .addOption(configOption())
    .requiredOption('--remote <id>', 'the remote holding the backup')
    .requiredOption('--vm <uuid>', 'the VM (its folder in xo-vm-backups/)')
    .option(
      '--backup <datetime>',
      'this backup (20261122T061500Z or 2026-11-22T06:15:00Z); default: the newest complete',
    )
    .requiredOption('--to <dir>', 'a new or empty folder outside every protected remote, on a local filesystem')
    .option('--dry-run', 'list what would be copied and the bytes; copy nothing', false)
    .option('--json', 'print the result as JSON', false)
    .addHelpText(
      'after',
      '\nOnly reads the remote (the daemon may keep running). Copies share blocks by reflink (FICLONE) where the ' +
        "filesystem can (xfs, btrfs, the remote's own filesystem), and are read back and compared with the originals. " +
        'Refuses a target inside a protected remote, not empty, or on a network filesystem (nfs, cifs, fuse...). ' +
        'See docs/operations.md, "Restoring after an incident".' +
        exitCodes({
          ok: 'staged, every file read back identical (or, with --dry-run, listed)',
          failure:
            'the VM or backup was not found, something on the remote was refused (named; nothing copied), or a copy failed',
          usage: 'bad usage or config, or the target was refused (nothing was changed)',
        }),
    )
    .action(async (options: StageRestoreCommandOptions) => {
      setExit(await runStageRestore(options, io, systemClock));
    });
}
