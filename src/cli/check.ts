import { existsSync } from 'node:fs';
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import { assertCapabilities } from '../attributes/capability.js';
import { IoctlAdapter } from '../attributes/ioctl.js';
import { selfTestRemote } from '../attributes/selftest.js';
import { loadConfig } from '../config/load.js';
import { isInside } from '../paths.js';
import type { Config, RemoteConfig } from '../config/schema.js';
import { AppError } from '../errors.js';
import { withHeldRemote } from '../remote/held.js';
import { readingOf } from '../remote/encryption.js';
import { isUntouchedByXo, resolveRemoteRoot } from '../remote/root.js';
import { realpathOfNearest } from '../paths.js';
import { isFlatVhdName } from '../remote/model.js';
import { listVdiFolders } from '../remote/read.js';
import { findLeafFolders, type FoundLeaf } from '../remote/scan.js';
import { surveyRemote, type SurveyedVm } from '../status/restore-survey.js';
import { surveyChainCost } from '../status/chain-cost-survey.js';
import { formatBytes, type ChainCost } from '../status/chain-cost.js';
import { adviseXoSettings } from '../status/xo-settings.js';
import { readInstalledUnit, UNIT_NAME, viewedFrom, type InstalledUnit } from '../systemd/locate.js';
import { judgeSandbox, pathNeeds, sandboxOf } from '../systemd/sandbox.js';
import { lastValue, parseUnit, splitWords } from '../systemd/unit-file.js';
import { EXIT } from './exit-codes.js';
import type { Io } from './io.js';

export interface CheckResult {
  check: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

// Runs one check and records its result; false when it failed.
type Recorder = (check: string, run: () => Promise<string>) => Promise<boolean>;

// `check`: the preflight before enabling the service. Every check runs, one line each; exit 1 if any failed.
export async function runCheck(options: { config: string; json: boolean; root?: string }, io: Io): Promise<number> {
  const results: CheckResult[] = [];
  const record = recorderInto(results);
  const config = await checkConfig(record, options.config);
  await record('capabilities', async () => {
    assertCapabilities();
    return 'CAP_LINUX_IMMUTABLE, CAP_FOWNER and CAP_DAC_OVERRIDE are effective';
  });
  const attributes = new IoctlAdapter();
  await checkFlagHelper(record, attributes);
  if (config !== undefined) {
    const folders = await checkRemotes(record, config, attributes);
    await checkInotifyWatches(record, folders);
  }
  await checkSystemdUnit(record, results, options, config);
  printResults(io, results, options.json);
  return results.every((r) => r.ok) ? EXIT.ok : EXIT.failure;
}

function recorderInto(results: CheckResult[]): Recorder {
  return async (check, run) => {
    try {
      results.push({ check, ok: true, detail: await run() });
      return true;
    } catch (error) {
      const fix = error instanceof AppError ? error.hint : undefined;
      results.push({ check, ok: false, detail: (error as Error).message, fix });
      return false;
    }
  };
}

async function checkConfig(record: Recorder, file: string): Promise<Config | undefined> {
  let config: Config | undefined;
  await record('config', async () => {
    config = loadConfig(file);
    const warnings = (config.warnings ?? []).map((w) => `; warning: ${w}`).join('');
    return `${file} is valid (${config.remotes.length} remote(s))${warnings}`;
  });
  return config;
}

async function checkFlagHelper(record: Recorder, attributes: IoctlAdapter): Promise<void> {
  await record('flag helper (perl)', async () => {
    const top = { root: '/', realRoot: '/' };
    if ((await attributes.isImmutable(top, ['/'])).get('/') === undefined)
      throw new Error('the flag helper could not read the flags of /');
    // A path that does not exist: the helper runs and reports it vanished, which proves it works.
    const missing = `/nonexistent-xo-immutable-backups-check-${process.pid}`;
    const [outcome] = await attributes.setImmutable(top, [{ path: missing, recursive: false }], false);
    if (outcome?.status !== 'vanished')
      throw new Error(`the flag helper did not answer as expected: ${JSON.stringify(outcome)}`);
    return 'runs (perl, libexec/xo-immutable-flags.pl)';
  });
}

// Checks each remote's root, its +i self-test and that the index is outside it; returns the backup folders found.
async function checkRemotes(record: Recorder, config: Config, attributes: IoctlAdapter): Promise<number> {
  let folders = 0;
  for (const remote of config.remotes) {
    let realRoot = '';
    const rootOk = await record(`remote ${remote.id}: root`, async () => {
      realRoot = await resolveRemoteRoot(remote);
      return `${realRoot} exists`;
    });
    if (!rootOk) continue;
    await record(`remote ${remote.id}: immutable attribute`, async () => {
      await selfTestRemote({ root: remote.root, realRoot }, attributes);
      return 'self-test passed: a locked probe refused a write and an unlink';
    });
    await record(`remote ${remote.id}: index outside the remote`, () => indexOutside(config.indexPath, remote));
    await record(`remote ${remote.id}: kind`, () => remoteKind(remote));
    const leaves = await findLeafFolders(remote.root);
    await record(`remote ${remote.id}: restorable while locked`, () => flatVhdWarning(leaves));
    const survey = surveyForCheck(remote, attributes, config.protectChains);
    await record(`remote ${remote.id}: XO settings`, async () => xoSettingsWarning(await survey, remote));
    await record(`remote ${remote.id}: beyond XO's retention`, async () => chainCostWarning((await survey).cost));
    folders += leaves.length;
  }
  return folders;
}

// How the daemon will protect it, and, for a new remote, that either order of set-up works.
async function remoteKind(remote: RemoteConfig): Promise<string> {
  // First: a key file that is not root-only (or not this remote's key) fails the check, whatever the remote holds.
  const reading = await readingOf(remote, { root: remote.root, realRoot: await resolveRemoteRoot(remote) });
  if (await isUntouchedByXo(remote.root))
    return (
      'new: XO has written nothing there yet; the daemon writes immutability.json once XO has, ' +
      'so add the remote in XO (with encryption or not) before or after starting the service' +
      (remote.encryptionKeyFile === undefined ? '' : "; the key is checked against XO's metadata.json then")
    );
  if (reading.decrypt !== undefined)
    return (
      `encrypted, read with the key file ${remote.encryptionKeyFile} (root-only, and it decrypts XO's ` +
      "metadata.json): aliases and jsons are read to find each backup's VHD directories"
    );
  return reading.encrypted
    ? 'encrypted: VHD directories are matched to backups by name (aliases and jsons are ciphertext)'
    : "plain: aliases and jsons are read to find each backup's VHD directories";
}

// XO opens a flat .vhd read-write even to read it: a locked one cannot be restored in place (docs/operations.md).
async function flatVhdWarning(leaves: readonly FoundLeaf[]): Promise<string> {
  let flat = 0;
  for (const leaf of leaves) {
    if (leaf.kind !== 'vm') continue;
    const vdis = await listVdiFolders(leaf.path);
    if (vdis.some((v) => v.entries.some((e) => e.isFile && isFlatVhdName(e.name)))) flat++;
  }
  if (flat === 0) return 'no flat VHD: XO restores locked backups in place';
  return (
    `WARNING: ${flat} VM folder(s) hold flat .vhd files, which XO cannot restore while they are locked (it opens ` +
    'them read-write); in XO, set the remote to "store backup as multiple data blocks"; to restore meanwhile without ' +
    'unlocking, copy a backup out with `xo-immutable-backups stage-restore` (docs/operations.md, "Restoring after an ' +
    'incident")'
  );
}

interface CheckSurvey {
  vms: SurveyedVm[];
  cost: ChainCost;
  now: number;
}

// The backups on the remote, read once for the two checks below (the flags only of what is left beyond retention).
async function surveyForCheck(
  remote: RemoteConfig,
  attributes: IoctlAdapter,
  protectChains: boolean,
): Promise<CheckSurvey> {
  const now = Date.now();
  const root = { root: remote.root, realRoot: await resolveRemoteRoot(remote) };
  const reading = await readingOf(remote, root);
  const surveyed = {
    encrypted: reading.encrypted,
    durationMs: remote.immutabilityDurationMs,
    protectChains: remote.protectChains ?? protectChains,
  };
  const within = { ...root, ...reading };
  return withHeldRemote(within, async (held) => {
    // Only the shape of the backups is needed for the settings, not whether they are locked.
    const vms = await surveyRemote(
      held,
      surveyed,
      [],
      () => Promise.resolve(new Map<string, boolean | undefined>()),
      now,
    );
    const cost = await surveyChainCost(held, surveyed, vms, (paths) => attributes.isImmutable(within, paths));
    return { vms, cost, now };
  });
}

// Settings of XO's job that fight the window, from the backups on the remote (docs/operations.md, "Chains").
function xoSettingsWarning({ vms, now }: CheckSurvey, remote: RemoteConfig): string {
  const advice = adviseXoSettings(vms, now, remote.immutabilityDurationMs);
  if (advice.length === 0) return 'no VM whose XO settings fight the window (as far as the remote shows)';
  return `WARNING: ${advice.map((a) => `VM ${a.vm}: ${a.detail}; ${a.set}`).join('. ')}`;
}

// Without the key, the cost said plainly: every VDI folder never freed, and what XO's merges could not remove.
function chainCostWarning(cost: ChainCost): string {
  const { backups, bytes } = cost.beyondRetention;
  const held = `${backups} backup(s) XO's retention removed stay locked (${formatBytes(bytes)})`;
  if (cost.unfreedVdis.length === 0)
    return backups === 0
      ? 'none: no disk of a backup XO removed stays locked'
      : `${held}, each until the backup needing it leaves its window`;
  const folders = cost.unfreedVdis.map(
    (v) => `${v.vm}/${v.vdi} (${v.leftoverBackups} removed backup(s), ${formatBytes(v.leftoverBytes)})`,
  );
  return (
    `WARNING: encrypted remote read without its key: ${cost.unfreedVdis.length} VDI folder(s) keep every VHD locked ` +
    `while backups keep coming, so XO's merges fail and the remote grows: ${folders.join(', ')}; ${held}. Choose: ` +
    "the remote's key file, protectChains false for this remote, or accept the growth (docs/operations.md, " +
    '"Encrypted remotes: the cost and the three choices")'
  );
}

async function indexOutside(indexPath: string, remote: RemoteConfig): Promise<string> {
  const real = await resolveRemoteRoot(remote);
  if (isInside(await realpathOfNearest(indexPath), real) || isInside(indexPath, remote.root)) {
    throw new AppError('CONFIG_INVALID', `indexPath ${indexPath} is inside ${remote.root}`, {
      value: indexPath,
      hint: 'move indexPath outside every remote, such as "/var/lib/xo-immutable-backups"',
    });
  }
  return `${indexPath} is outside`;
}

async function checkInotifyWatches(record: Recorder, folders: number): Promise<void> {
  await record('inotify watches', async () => {
    const limit = Number.parseInt((await readFile('/proc/sys/fs/inotify/max_user_watches', 'utf8')).trim(), 10);
    // One watch per backup folder, a few for the folders above them, and room for growth.
    const needed = folders * 2 + 1024;
    if (limit < needed) {
      throw new AppError(
        'USAGE',
        `fs.inotify.max_user_watches is ${limit}, and ${folders} backup folder(s) need about ${needed}`,
        {
          value: limit,
          hint:
            `sysctl -w fs.inotify.max_user_watches=${needed} ` +
            'and keep it in /etc/sysctl.d/90-xo-immutable-backups.conf',
        },
      );
    }
    return `${limit} allowed, about ${folders} needed now`;
  });
}

// The unit as systemd will run it, drop-ins included, against every path the daemon writes: `check` itself runs
// outside the unit's sandbox, so a path the unit leaves read-only or hides would pass everything else.
async function checkSystemdUnit(
  record: Recorder,
  results: CheckResult[],
  options: { config: string; root?: string },
  config: Config | undefined,
): Promise<void> {
  let unit: InstalledUnit | undefined;
  const found = await record('systemd unit', async () => {
    unit = await readInstalledUnit(options.root);
    if (unit === undefined)
      throw new AppError('USAGE', `${UNIT_NAME} is not installed`, {
        value: UNIT_NAME,
        hint: `xo-immutable-backups install-unit --config ${path.resolve(options.config)} (docs/installation.md)`,
      });
    return `${unit.sources.map((s) => s.path).join(' + ')} (${unit.from})`;
  });
  if (!found || unit === undefined || config === undefined) return;
  const parsed = parseUnit(unit.sources);
  const configFile = viewedFrom(path.resolve(options.root ?? '/'), path.resolve(options.config));
  await record('systemd unit: config file', async () => {
    const unitConfig = configOfExecStart(lastValue(parsed, 'Service', ['ExecStart']));
    if (unitConfig !== undefined && path.resolve(unitConfig) !== configFile)
      throw new AppError('USAGE', `the unit runs the daemon with --config ${unitConfig}, not ${configFile}`, {
        value: unitConfig,
        hint: `check that file instead (check --config ${unitConfig}), or install-unit --config ${configFile}`,
      });
    return `the unit reads ${configFile}`;
  });
  const base = options.root ?? '/';
  const findings = judgeSandbox(sandboxOf(parsed), pathNeeds(config, configFile), (p) =>
    existsSync(path.join(base, p)),
  );
  for (const f of findings)
    results.push({ check: `systemd unit: ${f.what}`, ok: false, detail: f.problem, fix: f.fix });
  if (findings.length === 0)
    results.push({
      check: 'systemd unit: sandbox',
      ok: true,
      detail: 'every remote root, indexPath and the metrics folder are reachable and writable for the service',
    });
}

// The --config FILE of an ExecStart= line, when it names one.
function configOfExecStart(execStart: string | undefined): string | undefined {
  if (execStart === undefined) return undefined;
  const words = splitWords(execStart);
  const at = words.findIndex((w) => w === '--config' || w === '-c');
  if (at >= 0) return words[at + 1];
  return words.find((w) => w.startsWith('--config='))?.slice('--config='.length);
}

function printResults(io: Io, results: readonly CheckResult[], json: boolean): void {
  if (json) {
    io.out(JSON.stringify({ ok: results.every((r) => r.ok), checks: results }, null, 2));
    return;
  }
  for (const r of results) {
    io.out(`${r.ok ? 'OK  ' : 'FAIL'} ${r.check}: ${r.detail}`);
    if (r.fix !== undefined) io.out(`     fix: ${r.fix}`);
  }
}
