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
import { resolveRemoteRoot } from '../remote/root.js';
import { realpathOfNearest } from '../paths.js';
import { withHeldRemote } from '../remote/held.js';
import { findLeafFolders } from '../remote/scan.js';
import { readInstalledUnit, UNIT_NAME, viewedFrom, type InstalledUnit } from '../systemd/locate.js';
import { boundingSetOf, judgeBoundingSet } from '../systemd/capabilities.js';
import { judgeSandbox, pathNeeds, sandboxOf } from '../systemd/sandbox.js';
import { lastValue, parseUnit, splitWords } from '../systemd/unit-file.js';
import { surveyRemoteNow } from '../status/chain-cost-survey.js';
import { chainCostWarning, flatVhdWarning, remoteKind, xoSettingsWarning } from './check-remote.js';
import { EXIT } from './exit-codes.js';
import { printJson, type Io } from './io.js';

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
    const within = { root: remote.root, realRoot };
    const leaves = await withHeldRemote(within, (held) => findLeafFolders(held));
    await record(`remote ${remote.id}: restorable while locked`, () =>
      withHeldRemote(within, (held) => Promise.resolve(flatVhdWarning(held, leaves))),
    );
    // The backups on the remote, read once for the two checks below (the flags only of what is left beyond retention).
    const now = Date.now();
    const survey = surveyRemoteNow(remote, { protectChains: config.protectChains, stored: [], attributes, now }, true);
    await record(`remote ${remote.id}: XO settings`, async () => xoSettingsWarning((await survey).vms, now, remote));
    await record(`remote ${remote.id}: beyond XO's retention`, async () => chainCostWarning((await survey).chainCost));
    folders += leaves.length;
  }
  return folders;
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
  await record('systemd unit: capabilities', async () => judgeBoundingSet(boundingSetOf(parsed)));
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
    printJson(io, { ok: results.every((r) => r.ok), checks: results });
    return;
  }
  for (const r of results) {
    io.out(`${r.ok ? 'OK  ' : 'FAIL'} ${r.check}: ${r.detail}`);
    if (r.fix !== undefined) io.out(`     fix: ${r.fix}`);
  }
}
