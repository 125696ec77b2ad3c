import path from 'node:path';
import type { Config } from '../config/schema.js';
import { lastValue, listValue, parseBoolean, type ParsedUnit } from './unit-file.js';

// One path a [Service] setting names: `-` means systemd ignores it when missing, `+` that it is relative to the
// host even with RootDirectory= (this unit has none).
export interface SandboxPath {
  path: string;
  optional: boolean;
  setting: string;
}

// The filesystem view a unit gives its service, as far as the daemon's paths are concerned (systemd.exec(5)).
export interface Sandbox {
  protectSystem: 'no' | 'yes' | 'full' | 'strict';
  protectHome: 'no' | 'yes' | 'read-only' | 'tmpfs';
  privateTmp: boolean;
  readWrite: SandboxPath[];
  readOnly: SandboxPath[];
  inaccessible: SandboxPath[];
}

// A path the daemon reads or writes, and what it is for the admin.
export interface PathNeed {
  path: string;
  access: 'read' | 'write';
  what: string;
  // The daemon creates it when missing (the index), so it must be creatable; a missing remote root is reported by
  // the daemon itself, and judged here once it exists.
  created?: boolean;
}

export interface SandboxFinding {
  what: string;
  path: string;
  problem: string;
  fix: string;
}

const SERVICE = 'Service';
const HOME_DIRS = ['/home', '/root', '/run/user'];
const TMP_DIRS = ['/tmp', '/var/tmp'];
// The folders the *Directory= settings are relative to; systemd creates them writable under ProtectSystem=strict.
const MANAGED_DIRECTORIES: [string, string][] = [
  ['StateDirectory', '/var/lib'],
  ['CacheDirectory', '/var/cache'],
  ['LogsDirectory', '/var/log'],
  ['RuntimeDirectory', '/run'],
  ['ConfigurationDirectory', '/etc'],
];
const SPECIFIERS: Record<string, string> = { S: '/var/lib', C: '/var/cache', L: '/var/log', t: '/run', E: '/etc' };

export function sandboxOf(unit: ParsedUnit): Sandbox {
  const paths = (keys: string[]): SandboxPath[] =>
    listValue(unit, SERVICE, keys).map(({ word }) => pathWord(word, keys[0]!));
  const managed = MANAGED_DIRECTORIES.flatMap(([key, base]) =>
    listValue(unit, SERVICE, [key]).map(({ word }) => ({
      // "name:symlink" (systemd 250): the folder is the part before the colon.
      path: path.posix.join(base, word.split(':')[0]!),
      optional: false,
      setting: key,
    })),
  );
  return {
    protectSystem: protectSystem(lastValue(unit, SERVICE, ['ProtectSystem'])),
    protectHome: protectHome(lastValue(unit, SERVICE, ['ProtectHome'])),
    // "disconnected" (systemd 257) is private too.
    privateTmp:
      lastValue(unit, SERVICE, ['PrivateTmp']) === 'disconnected' ||
      parseBoolean(lastValue(unit, SERVICE, ['PrivateTmp'])) === true,
    readWrite: [...paths(['ReadWritePaths', 'ReadWriteDirectories']), ...managed],
    readOnly: paths(['ReadOnlyPaths', 'ReadOnlyDirectories']),
    inaccessible: paths(['InaccessiblePaths', 'InaccessibleDirectories']),
  };
}

function pathWord(word: string, setting: string): SandboxPath {
  let rest = word;
  let optional = false;
  while (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest.startsWith('-')) optional = true;
    rest = rest.slice(1);
  }
  rest = rest.replace(/%(.)/g, (all, c: string) => (c === '%' ? '%' : (SPECIFIERS[c] ?? all)));
  return { path: normalize(rest), optional, setting };
}

function protectSystem(value: string | undefined): Sandbox['protectSystem'] {
  if (value === 'full' || value === 'strict') return value;
  return parseBoolean(value) === true ? 'yes' : 'no';
}

function protectHome(value: string | undefined): Sandbox['protectHome'] {
  if (value === 'read-only' || value === 'tmpfs') return value;
  return parseBoolean(value) === true ? 'yes' : 'no';
}

function normalize(p: string): string {
  const n = path.posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

function covers(folder: string, p: string): boolean {
  return folder === '/' || p === folder || p.startsWith(`${folder}/`);
}

// What the daemon writes and reads, from the config: remote roots (probe, immutability.json, immutable flags), the index
// folder (entries, status.json, clock and proven state), the metrics file's folder (written by rename), the config.
export function pathNeeds(config: Config, configFile: string): PathNeed[] {
  const needs: PathNeed[] = [
    ...config.remotes.map((r): PathNeed => ({ path: r.root, access: 'write', what: `remote "${r.id}" root` })),
    { path: config.indexPath, access: 'write', what: 'indexPath', created: true },
    ...(config.metricsFile === undefined
      ? []
      : [{ path: path.dirname(config.metricsFile), access: 'write' as const, what: "metricsFile's folder" }]),
    { path: configFile, access: 'read', what: 'config file' },
  ];
  return needs.map((n) => ({ ...n, path: normalize(n.path) }));
}

interface Rule {
  path: string;
  mode: 'rw' | 'ro' | 'hidden';
  why: string;
}

// Pure: what the service would fail to do under `sandbox`, each with what to do. `exists` says whether a path exists
// on this machine now (a `-` path that does not is ignored by systemd).
export function judgeSandbox(
  sandbox: Sandbox,
  needs: readonly PathNeed[],
  exists: (p: string) => boolean,
): SandboxFinding[] {
  const findings: SandboxFinding[] = [];
  for (const p of [...sandbox.readWrite, ...sandbox.readOnly, ...sandbox.inaccessible]) {
    if (
      p.optional ||
      (p.setting !== 'ReadWritePaths' && p.setting !== 'ReadOnlyPaths' && p.setting !== 'InaccessiblePaths')
    )
      continue;
    if (!exists(p.path))
      findings.push({
        what: `${p.setting}=${p.path}`,
        path: p.path,
        problem: `${p.path} does not exist, so systemd refuses to start the service (status 226/NAMESPACE)`,
        fix: `create ${p.path}, or write it as ${p.setting}=-${p.path} so that systemd skips it while it is missing`,
      });
  }
  const rules = rulesOf(sandbox, exists);
  for (const need of needs) {
    const finding = judgeNeed(sandbox, rules, need, exists);
    if (finding !== undefined) findings.push({ what: need.what, path: need.path, ...finding });
  }
  return findings;
}

function rulesOf(sandbox: Sandbox, exists: (p: string) => boolean): Rule[] {
  const present = (p: SandboxPath): boolean => !p.optional || exists(p.path);
  const rules: Rule[] = [];
  if (sandbox.protectSystem === 'strict') rules.push({ path: '/', mode: 'ro', why: 'ProtectSystem=strict' });
  if (sandbox.protectSystem !== 'no' && sandbox.protectSystem !== 'strict')
    for (const p of ['/usr', '/boot', '/efi', ...(sandbox.protectSystem === 'full' ? ['/etc'] : [])])
      rules.push({ path: p, mode: 'ro', why: `ProtectSystem=${sandbox.protectSystem}` });
  if (sandbox.protectHome === 'read-only')
    for (const p of HOME_DIRS) rules.push({ path: p, mode: 'ro', why: 'ProtectHome=read-only' });
  for (const p of sandbox.readOnly.filter(present))
    rules.push({ path: p.path, mode: 'ro', why: `${p.setting}=${p.path}` });
  for (const p of sandbox.readWrite.filter(present))
    rules.push({ path: p.path, mode: 'rw', why: `${p.setting}=${p.path}` });
  return rules;
}

function judgeNeed(
  sandbox: Sandbox,
  rules: readonly Rule[],
  need: PathNeed,
  exists: (p: string) => boolean,
): Omit<SandboxFinding, 'what' | 'path'> | undefined {
  const p = need.path;
  const gone =
    need.access === 'write' ? 'it would find an empty folder, or lose what it writes' : 'it would not find it';
  const tmp = TMP_DIRS.find((d) => covers(d, p));
  if (sandbox.privateTmp && tmp !== undefined)
    return {
      problem: `${p} is under ${tmp}, which PrivateTmp=yes replaces with a private one for the service: ${gone}`,
      fix: `move it out of ${tmp} (a remote under /srv or /mnt, the index under /var/lib), and update the config`,
    };
  const hidden = sandbox.inaccessible.find((i) => covers(i.path, p) && (!i.optional || exists(i.path)));
  if (hidden !== undefined)
    return {
      problem: `${p} is hidden from the service by ${hidden.setting}=${hidden.path}`,
      fix: `remove ${hidden.path} from ${hidden.setting}= (systemctl edit xo-immutable-backups), or move it`,
    };
  const home = HOME_DIRS.find((d) => covers(d, p));
  if (home !== undefined && (sandbox.protectHome === 'yes' || sandbox.protectHome === 'tmpfs'))
    return {
      problem: `${p} is under ${home}, which ProtectHome=${sandbox.protectHome} hides from the service: ${gone}`,
      fix:
        'run `xo-immutable-backups install-unit` (its drop-in sets ProtectHome=read-only and ReadWritePaths= for it), ' +
        'or move it out of /home, /root and /run/user',
    };
  if (need.access === 'read' || (!need.created && !exists(p))) return undefined;
  // The most specific rule wins; at the same path, a read-only one (when in doubt, report).
  let winner: Rule | undefined;
  for (const rule of rules) {
    if (!covers(rule.path, p)) continue;
    if (
      winner === undefined ||
      rule.path.length > winner.path.length ||
      (rule.path.length === winner.path.length && rule.mode !== 'rw')
    )
      winner = rule;
  }
  if (winner === undefined || winner.mode === 'rw') return undefined;
  const skipped = sandbox.readWrite.find((w) => w.optional && covers(w.path, p) && !exists(w.path));
  if (skipped !== undefined && !exists(p))
    return {
      problem: `${p} does not exist, and systemd skips ${skipped.setting}=-${skipped.path} while it is missing: the service would find it read-only (${winner.why}) and fail with EROFS`,
      fix: `create it: mkdir -p -m 0700 ${skipped.path}`,
    };
  return {
    problem: `${p} is read-only for the service (${winner.why}, and no ReadWritePaths= covers it): writes and the immutable flag fail with EROFS`,
    fix: `run \`xo-immutable-backups install-unit\` (it writes ReadWritePaths= from the config), or add ReadWritePaths=-${p} with systemctl edit xo-immutable-backups`,
  };
}
