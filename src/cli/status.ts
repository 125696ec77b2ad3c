import { readFile } from 'node:fs/promises';
import type { Clock } from '../clock.js';
import { readClockState } from '../clockguard/state.js';
import { loadConfig } from '../config/load.js';
import { HoldStore } from '../holds/store.js';
import { checkIndexFormat } from '../index/format.js';
import { IndexStore, type StoredEntry } from '../index/store.js';
import { processExists } from '../lock/instance-lock.js';
import { readDaemonStatus } from '../status/daemon-status.js';
import { renderStatus } from '../status/render.js';
import { buildStatus } from '../status/report.js';
import { judgeRemote, type RestorePoints } from '../status/restore-points.js';
import { surveyRemoteNow } from '../status/chain-cost-survey.js';
import type { ChainCost } from '../status/chain-cost.js';
import { adviseXoSettings, type XoSettingAdvice } from '../status/xo-settings.js';
import { IoctlAdapter } from '../attributes/ioctl.js';
import type { RemoteConfig } from '../config/schema.js';
import { EXIT } from './exit-codes.js';
import { wrapLine } from './render.js';
import { printJson, type Io } from './io.js';
import { selectRemotes, type RemotesOptions } from './select.js';

// `status`: what is protected, until when, and whether the daemon is running well. Exit 1 when something needs an
// admin: the daemon is not running, a remote is unavailable, lifting is frozen, or a repair lift holds a VM unlocked.
export async function runStatus(options: RemotesOptions, io: Io, clock: Clock): Promise<number> {
  const config = loadConfig(options.config);
  const remotes = selectRemotes(config.remotes, options.remote);
  await checkIndexFormat(config.indexPath);
  const daemon = await readDaemonStatus(config.indexPath);
  const clockState = await readClockState(config.indexPath);
  const inputs = [];
  for (const remote of remotes) {
    const index = new IndexStore(config.indexPath, remote.id);
    const stored: StoredEntry[] = [];
    for (const day of await index.listDays()) for (const entry of await index.readDay(day)) stored.push(entry);
    const holds = new HoldStore(config.indexPath, remote.id).list();
    inputs.push({
      id: remote.id,
      root: remote.root,
      durationMs: remote.immutabilityDurationMs,
      stored,
      holds,
      ...(await restorePointsNow(remote, stored, clock.now(), config.protectChains)),
    });
  }
  const report = buildStatus({
    now: clock.now(),
    daemon,
    daemonProcessExists: daemon !== undefined && processExists(daemon.pid),
    frozenReason: clockState.frozen?.reason,
    maxUserWatches:
      Number.parseInt((await readFile('/proc/sys/fs/inotify/max_user_watches', 'utf8').catch(() => '')).trim(), 10) ||
      undefined,
    remotes: inputs,
  });
  if (options.json) printJson(io, report);
  else for (const line of renderStatus(report).flatMap((l) => wrapLine(l))) io.out(line);
  const attention =
    !report.daemon.running ||
    report.lifting.frozen ||
    report.remotes.some((r) => r.healthy === false || r.holds.length > 0);
  return attention ? EXIT.failure : EXIT.ok;
}

// Read from the remote now, not from the daemon's last look: a unit unlocked or deleted a second ago shows.
async function restorePointsNow(
  remote: RemoteConfig,
  stored: StoredEntry[],
  now: number,
  protectChains: boolean,
): Promise<{ restorePoints: RestorePoints | null; chainCost: ChainCost | null; xoSettings: XoSettingAdvice[] | null }> {
  try {
    const survey = { protectChains, stored, attributes: new IoctlAdapter(), now };
    const { vms, chainCost } = await surveyRemoteNow(remote, survey);
    return {
      restorePoints: judgeRemote(
        vms.map((vm) => vm.model),
        now,
      ),
      chainCost,
      xoSettings: adviseXoSettings(vms, now, remote.immutabilityDurationMs),
    };
  } catch {
    return { restorePoints: null, chainCost: null, xoSettings: null };
  }
}
