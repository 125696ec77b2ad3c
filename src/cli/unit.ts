import { existsSync, lstatSync } from 'node:fs';
import { mkdir, readdir, readFile, rmdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../atomic.js';
import { loadConfig } from '../config/load.js';
import { AppError, errnoCode } from '../errors.js';
import { INSTALLED_MARK, PATHS_DROP_IN, renderPathsDropIn, renderUnit, templateSandbox } from '../systemd/install.js';
import { readInstalledUnit, readOptional, UNIT_NAME, viewedFrom } from '../systemd/locate.js';
import { judgeSandbox, pathNeeds, sandboxOf, type SandboxFinding } from '../systemd/sandbox.js';
import { daemonReload, systemdRuns, unitState } from '../systemd/systemctl.js';
import { parseUnit } from '../systemd/unit-file.js';
import { completionFiles, isOurCompletion } from './completion.js';
import type { ProgramSpec } from './describe.js';
import { EXIT } from './exit-codes.js';
import type { Io } from './io.js';

const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '');
const UNIT_DIR = '/etc/systemd/system';
const UNIT_FILE = path.join(UNIT_DIR, UNIT_NAME);
const DROP_IN = path.join(UNIT_DIR, `${UNIT_NAME}.d`, PATHS_DROP_IN);
const SERVICE = 'xo-immutable-backups';

export interface InstallUnitOptions {
  config: string;
  root?: string;
  dryRun: boolean;
  force: boolean;
}

// install-unit: the packaged unit, pointed at this installation, plus a drop-in with ReadWritePaths= from the config;
// judged as systemd will run it (with the admin's other drop-ins) before anything is written. Also the shell
// completion, which npm cannot install: `spec` is what --help says, so the scripts match this version.
export async function runInstallUnit(options: InstallUnitOptions, io: Io, spec: ProgramSpec): Promise<number> {
  const config = loadConfig(options.config);
  const root = options.root === undefined ? '/' : path.resolve(options.root);
  // The config as the service will see it: with --root, a file under DIR is named from inside it.
  const configFile = viewedFrom(root, path.resolve(options.config));
  const onHost = (p: string): string => path.join(root, p);
  const template = await readFile(path.join(PACKAGE_ROOT, 'systemd', UNIT_NAME), 'utf8');
  const unitText = renderUnit(template, { node: process.execPath, packageRoot: PACKAGE_ROOT }, configFile);
  const dropInText = renderPathsDropIn(config, configFile, templateSandbox(template));

  await refuseForeignUnit(onHost(UNIT_FILE), options.force);

  // The daemon creates indexPath's content, but under ProtectSystem=strict only a path that exists can be writable.
  const createIndex = !existsSync(onHost(config.indexPath));
  const others = ((await readInstalledUnit(root === '/' ? '/' : root))?.sources ?? []).filter(
    (s) => s.path.endsWith('.conf') && path.basename(s.path) !== PATHS_DROP_IN,
  );
  const dropIns = [{ path: DROP_IN, text: dropInText }, ...others].sort((a, b) =>
    path.basename(a.path) < path.basename(b.path) ? -1 : 1,
  );
  const ordered = [{ path: UNIT_FILE, text: unitText }, ...dropIns];
  const needs = [
    ...pathNeeds(config, configFile),
    { path: process.execPath, access: 'read' as const, what: 'node' },
    { path: PACKAGE_ROOT, access: 'read' as const, what: 'this installation' },
  ];
  const findings = judgeSandbox(sandboxOf(parseUnit(ordered)), needs, (p) =>
    p === config.indexPath ? true : existsSync(onHost(p)),
  );
  if (findings.length > 0) {
    printFindings(io, findings);
    io.err(`nothing written: the service could not run with this config (${findings.length} problem(s) above)`);
    return EXIT.failure;
  }

  if (options.dryRun) {
    io.out(`would write ${onHost(UNIT_FILE)}:\n${unitText}`);
    io.out(`would write ${onHost(DROP_IN)}:\n${dropInText}`);
    if (createIndex) io.out(`would create ${onHost(config.indexPath)} (mode 0700)`);
    await installCompletions(spec, onHost, true, io);
    return EXIT.ok;
  }
  await mkdir(path.dirname(onHost(DROP_IN)), { recursive: true, mode: 0o755 });
  await writeFileAtomic(onHost(UNIT_FILE), unitText, 0o644);
  io.out(`wrote ${onHost(UNIT_FILE)}`);
  io.out(`  ExecStart=${/^ExecStart=(.*)$/m.exec(unitText)![1]!}`);
  await writeFileAtomic(onHost(DROP_IN), dropInText, 0o644);
  io.out(`wrote ${onHost(DROP_IN)}`);
  for (const line of dropInText.split('\n').filter((l) => /^(ReadWritePaths=.|ProtectHome=)/.test(l)))
    io.out(`  ${line}`);
  if (createIndex) {
    await mkdir(onHost(config.indexPath), { recursive: true, mode: 0o700 });
    io.out(`created ${onHost(config.indexPath)} (mode 0700)`);
  }
  await installCompletions(spec, onHost, false, io);
  await reloadAndSayNext(options.root, io);
  return EXIT.ok;
}

// A unit file install-unit did not write is replaced only with --force: its local changes would be lost.
async function refuseForeignUnit(unitFile: string, force: boolean): Promise<void> {
  const existing = await readOptional(unitFile);
  if (existing !== undefined && !existing.startsWith(INSTALLED_MARK) && !force)
    throw new AppError('USAGE', `${unitFile} exists and was not written by install-unit`, {
      value: unitFile,
      hint:
        'replacing it loses its local changes. A copy of the packaged unit with only ExecStart= and ReadWritePaths= ' +
        'edited (the old install guide): run install-unit again with --force, which writes both. Other changes: move ' +
        `them into a drop-in of your own (${UNIT_DIR}/${UNIT_NAME}.d/local.conf) first`,
    });
}

// systemd reads the new unit (unless written under --root, or systemd is not running), and the admin is told what
// to run next.
async function reloadAndSayNext(root: string | undefined, io: Io): Promise<void> {
  if (root === undefined && systemdRuns()) {
    await daemonReload();
    io.out('ran systemctl daemon-reload');
    const state = await unitState(UNIT_NAME);
    io.out(
      state.active === 'active'
        ? `next: systemctl restart ${SERVICE}   (it runs the old unit until then)`
        : `next: systemctl enable --now ${SERVICE}   (then: xo-immutable-backups status)`,
    );
  } else {
    io.out(
      root === undefined
        ? `systemd is not running here: once it is, systemctl enable --now ${SERVICE}`
        : `next, on that system: systemctl enable --now ${SERVICE}`,
    );
  }
}

export interface UninstallUnitOptions {
  root?: string;
  dryRun: boolean;
  force: boolean;
}

// uninstall-unit: removes what install-unit wrote, once the service is stopped and disabled. Backups stay locked.
export async function runUninstallUnit(options: UninstallUnitOptions, io: Io, spec: ProgramSpec): Promise<number> {
  const root = options.root === undefined ? '/' : path.resolve(options.root);
  const onHost = (p: string): string => path.join(root, p);
  const live = await refuseWhileEnabled(root, options.root === undefined);
  const unitText = await readOptional(onHost(UNIT_FILE));
  if (unitText !== undefined && !unitText.startsWith(INSTALLED_MARK) && !options.force)
    throw new AppError('USAGE', `${onHost(UNIT_FILE)} was not written by install-unit`, {
      value: onHost(UNIT_FILE),
      hint: 'check it is the one to remove, then run uninstall-unit --force (or remove it by hand)',
    });
  const removed: string[] = [];
  for (const file of [DROP_IN, UNIT_FILE]) {
    if (!existsSync(onHost(file))) continue;
    if (!options.dryRun) await unlink(onHost(file));
    removed.push(onHost(file));
  }
  const unitRemoved = removed.length > 0;
  for (const file of completionFiles(spec)) {
    const text = await readOptional(onHost(file.path));
    if (text === undefined || !isOurCompletion(text, spec.name)) continue;
    if (!options.dryRun) await unlink(onHost(file.path));
    removed.push(onHost(file.path));
  }
  const dropInDir = path.dirname(onHost(DROP_IN));
  let left: string[] = [];
  if (!options.dryRun) {
    await rmdir(dropInDir).catch((error: unknown) => {
      if (errnoCode(error) !== 'ENOENT' && errnoCode(error) !== 'ENOTEMPTY') throw error;
    });
    left = await readdir(dropInDir).catch(() => []);
  }
  const verb = options.dryRun ? 'would remove' : 'removed';
  if (removed.length === 0) io.out(`nothing to remove: no ${UNIT_NAME} in ${onHost(UNIT_DIR)}`);
  for (const file of removed) io.out(`${verb} ${file}`);
  if (left.length > 0)
    io.out(`left in place (not written by install-unit): ${left.map((n) => path.join(dropInDir, n)).join(', ')}`);
  if (live && unitRemoved && !options.dryRun) {
    await daemonReload();
    io.out('ran systemctl daemon-reload');
  }
  io.out(
    'backups stay immutable until their windows pass; to unlock a remote now: ' +
      'xo-immutable-backups lift --all --remote ID --yes (docs/installation.md, "Uninstall")',
  );
  return EXIT.ok;
}

// The unit is removed only once stopped and disabled: a running daemon keeps protecting, and an enabled one would
// be missed at the next boot. True when systemd runs here (and so is asked).
async function refuseWhileEnabled(root: string, onThisSystem: boolean): Promise<boolean> {
  const live = onThisSystem && systemdRuns();
  if (live) {
    const state = await unitState(UNIT_NAME);
    if (['active', 'activating', 'reloading', 'deactivating'].includes(state.active) || state.enabled === 'enabled')
      throw new AppError('DAEMON_RUNNING', `${UNIT_NAME} is ${state.active} and ${state.enabled}`, {
        value: state,
        hint: `stop and disable it first: systemctl disable --now ${SERVICE}; then run uninstall-unit again`,
      });
  } else {
    const wants = await enabledBy(path.join(root, UNIT_DIR));
    if (wants.length > 0)
      throw new AppError('DAEMON_RUNNING', `${UNIT_NAME} is enabled (${wants.join(', ')})`, {
        value: wants,
        hint: `disable it first: systemctl${onThisSystem ? '' : ` --root=${root}`} disable ${SERVICE}`,
      });
  }
  return live;
}

// The completion scripts, written on every run so an upgrade refreshes them. A file there that `completion` did
// not write (a distribution's, an admin's) is left alone.
async function installCompletions(
  spec: ProgramSpec,
  onHost: (p: string) => string,
  dryRun: boolean,
  io: Io,
): Promise<void> {
  for (const file of completionFiles(spec)) {
    const target = onHost(file.path);
    const existing = await readOptional(target);
    if (existing !== undefined && !isOurCompletion(existing, spec.name)) {
      io.out(`left in place (not written by install-unit): ${target}`);
    } else if (dryRun) {
      io.out(`would write ${target} (shell completion)`);
    } else {
      await mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
      await writeFileAtomic(target, file.text, 0o644);
      io.out(`wrote ${target}`);
    }
  }
}

function printFindings(io: Io, findings: readonly SandboxFinding[]): void {
  for (const f of findings) {
    io.err(`FAIL ${f.what}: ${f.problem}`);
    io.err(`     fix: ${f.fix}`);
  }
}

// The *.wants/ and *.requires/ links that enable the unit.
async function enabledBy(unitDir: string): Promise<string[]> {
  const found: string[] = [];
  for (const name of await readdir(unitDir).catch(() => [] as string[])) {
    if (!name.endsWith('.wants') && !name.endsWith('.requires')) continue;
    const link = path.join(unitDir, name, UNIT_NAME);
    try {
      lstatSync(link);
      found.push(link);
    } catch {
      // Not enabled by this target.
    }
  }
  return found;
}
