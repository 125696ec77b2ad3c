import { renderChainCost } from './chain-cost.js';
import type { RestorePoints, UnprotectedReason } from './restore-points.js';
import type { RemoteStatus, StatusReport } from './report.js';
import type { XoSettingAdvice } from './xo-settings.js';

// Human output, lines whole: the command wraps them at 80 columns (a cut line could lose the fix it names).
export function renderStatus(report: StatusReport): string[] {
  const held = report.remotes.reduce((n, remote) => n + remote.holds.length, 0);
  const holds = held === 0 ? [] : [`HELD:      ${held} VM(s) unlocked by a repair lift, NOT PROTECTED (below)`];
  return [...renderDaemon(report), ...holds, ...report.remotes.flatMap((remote) => ['', ...renderRemote(remote)])];
}

function time(iso: string | null): string {
  return iso === null ? '-' : `${iso.slice(0, 16).replace('T', ' ')} UTC`;
}

function renderDaemon(report: StatusReport): string[] {
  const lines: string[] = [];
  const d = report.daemon;
  lines.push(
    d.running
      ? `daemon:    running (pid ${d.pid}, version ${d.version}), heartbeat ${time(d.heartbeat)}`
      : `daemon:    NOT RUNNING${d.heartbeat === null ? '' : ` (last heartbeat ${time(d.heartbeat)})`}`,
  );
  lines.push(
    report.lifting.frozen ? `lifting:   FROZEN: ${report.lifting.reason ?? ''}` : 'lifting:   active (clock guard ok)',
  );
  if (report.lifting.frozen) lines.push('           check the clock, then: xo-immutable-backups lift --accept-clock');
  if (report.lastLock !== null)
    lines.push(
      `last lock: ${time(report.lastLock.at)}, ${report.lastLock.units} unit(s), ${report.lastLock.failed} failed`,
    );
  if (report.errorsSinceStart !== null)
    lines.push(
      `problems:  ${report.errorsSinceStart} error(s), ` +
        `${report.securityWarningsSinceStart} security warning(s) since start`,
    );
  if (report.foldersBackingOff !== null && report.foldersBackingOff > 0)
    lines.push(`retrying:  ${report.foldersBackingOff} folder(s) failing again and again, tried less often`);
  if (report.inotify.watchedFolders !== null)
    lines.push(
      `watches:   ${report.inotify.watchedFolders} folder(s) ` +
        `of fs.inotify.max_user_watches ${report.inotify.maxUserWatches ?? '?'}`,
    );
  return lines;
}

function healthOf(remote: RemoteStatus): string {
  if (remote.healthy === null) return 'health unknown';
  if (remote.waitingForXo === true) return "waiting for XO's first write";
  return remote.healthy ? 'healthy' : 'UNAVAILABLE';
}

function renderRemote(remote: RemoteStatus): string[] {
  const lines = [`remote ${remote.id}: ${healthOf(remote)}, ${remote.root}`];
  if (remote.problem !== null) lines.push(`  ${remote.problem}`);
  for (const hold of remote.holds)
    lines.push(
      `  !! HELD: VM ${hold.vm} NOT PROTECTED until ${time(hold.until)}`,
      `     repair lift by ${hold.by} at ${time(hold.since)}${hold.backup === null ? '' : `, backup ${hold.backup}`}`,
      `     end it: hold end --remote ${remote.id} --vm ${hold.vm}`,
    );
  lines.push(...renderCaps(remote.caps ?? null));
  if (remote.protectedByNameOnly === true) lines.push('  encrypted: VHD directories matched to backups by name only');
  if (remote.vmsWithUnknownChain !== null && remote.vmsWithUnknownChain > 0)
    lines.push(`  ${remote.vmsWithUnknownChain} VM(s) without a readable chain: older VHDs kept locked (safe side)`);
  if (remote.vmsWithPlantedLinks !== null && remote.vmsWithPlantedLinks > 0)
    lines.push(
      `  !! ${remote.vmsWithPlantedLinks} VM folder(s) hold links or other entries XO never writes (planted?): not followed, ` +
        'not locked; the security warnings name each: find who can write to the remote, then remove them',
    );
  if (remote.vmsWithFlatVhds !== null && remote.vmsWithFlatVhds > 0)
    lines.push(
      `  ${remote.vmsWithFlatVhds} VM(s) store flat VHDs: XO cannot restore them while locked`,
      '    (restore without unlocking: xo-immutable-backups stage-restore)',
    );
  lines.push(`  protected: ${remote.protectedUnits} unit(s) in ${remote.protectedBackups} backup(s)`);
  lines.push(...renderRestorePoints(remote.restorePoints), ...renderChainCost(remote.chainCost));
  lines.push(...renderXoSettings(remote.xoSettings));
  lines.push(...renderPending(remote));
  if (remote.oldestBackup !== null)
    lines.push(`  backups:   ${time(remote.oldestBackup)} .. ${time(remote.newestBackup)}`);
  if (remote.liftSkipped !== null) lines.push(`  !! LIFT SKIPPED: ${remote.liftSkipped}`);
  if (remote.lastLift !== null)
    lines.push(
      `  last lift: ${time(remote.lastLift.at)}, ` +
        `${remote.lastLift.unlocked} unlocked, ${remote.lastLift.failed} failed`,
    );
  lines.push('  unlocks in the next 14 days (units per UTC day):');
  const most = Math.max(1, ...remote.unlocks.map((u) => u.units));
  for (const { day, units } of remote.unlocks)
    lines.push(`    ${day} ${String(units).padStart(7)} ${'#'.repeat(Math.ceil((units / most) * 50))}`);
  return lines;
}

// Shown from 80% of a cap on: what happens at the cap, and what to do.
function renderCaps(caps: RemoteStatus['caps']): string[] {
  if (caps === null || caps === undefined) return [];
  const lines: string[] = [];
  const { watchedFolders: watched, indexEntries: entries } = caps;
  if (watched !== null && watched.level === 'reached')
    lines.push(
      `  !! WATCH CAP: ${watched.count} of ${watched.max} folders watched (maxWatchedFolders)`,
      '     new folders are not watched: their backups are locked at the next rescan',
    );
  else if (watched !== null && watched.level === 'near')
    lines.push(`  watches:   ${watched.count} of ${watched.max} folders (maxWatchedFolders), near the cap`);
  if (entries.level === 'reached')
    lines.push(
      `  !! INDEX CAP: ${entries.count} of ${entries.max} entries (maxIndexEntries)`,
      '     new units are locked without an entry: lift will not unlock them',
      '     remove folders nobody made or raise the cap, then run rebuild-index',
    );
  else if (entries.level === 'near')
    lines.push(`  index:     ${entries.count} of ${entries.max} entries (maxIndexEntries), near the cap`);
  return lines;
}

// At most this many restore points are named one by one; status --json names them all.
const NAMED_UNPROTECTED = 20;

const REASON_TEXT: Record<UnprotectedReason, string> = {
  'unit-missing': 'a unit is missing',
  'unit-unlocked': 'a unit is not locked',
  'unit-changed': 'a unit changed since it was locked',
  'base-expired': 'a VHD it is built on is past its lock',
  'chain-unknown': 'chain cannot be read',
};

function renderRestorePoints(points: RestorePoints | null): string[] {
  if (points === null) return ['  restore points: the remote could not be read'];
  const lines = [
    `  restore points in the window: ${points.inWindow}, ${points.protected} protected` +
      (points.unprotected > points.chainUnknown ? `, ${points.unprotected - points.chainUnknown} NOT` : ''),
  ];
  if (points.chainUnknown > 0)
    lines.push(`  ${points.chainUnknown} on chains that cannot be read: locked on the safe side, not proven`);
  // With no new backup, the first VM to run out of protected restore points does so then.
  const until = points.vms.map((vm) => vm.protectedUntil).filter((u): u is string => u !== null);
  if (until.length > 0 && until.length === points.vms.length)
    lines.push(`  every VM restorable until at least ${time(until.sort()[0]!)}`);
  const named = points.vms.flatMap((vm) =>
    vm.unprotected.filter((u) => u.reason !== 'chain-unknown').map((u) => ({ vm: vm.vm, ...u })),
  );
  for (const { vm, backup, reason } of named.slice(0, NAMED_UNPROTECTED))
    lines.push(`    ${vm.slice(0, 8)} ${backup}: ${REASON_TEXT[reason]}`);
  if (named.length > NAMED_UNPROTECTED)
    lines.push(`    and ${named.length - NAMED_UNPROTECTED} more (status --json names them all)`);
  return lines;
}

const SETTING_TEXT: Record<XoSettingAdvice['problem'], string> = {
  'chain-never-freed': 'no full inside the window: set a full backup interval',
  'retention-collides': 'retention meets locked backups: raise retention',
};

function renderXoSettings(advice: XoSettingAdvice[] | null): string[] {
  if (advice === null || advice.length === 0) return [];
  const lines = ['  XO settings (docs/operations.md, "Chains"; status --json says what to set):'];
  for (const { vm, problem } of advice.slice(0, NAMED_UNPROTECTED))
    lines.push(`    ${vm.slice(0, 8)} ${SETTING_TEXT[problem]}`);
  if (advice.length > NAMED_UNPROTECTED) lines.push(`    and ${advice.length - NAMED_UNPROTECTED} more`);
  return lines;
}

function renderPending(remote: RemoteStatus): string[] {
  if (remote.pendingUnits === 0) return [];
  return [
    `  PENDING:   ${remote.pendingUnits} unit(s) with no identity recorded: never unlocked by lift`,
    // Whole, even past 80 columns: a cut path names nothing.
    ...remote.pendingPaths.map((p) => `    ${p}`),
    '  check each (xo-immutable-backups verify), then chattr -i it by hand or lift --all',
  ];
}
