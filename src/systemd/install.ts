import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Config } from '../config/schema.js';
import { sandboxOf, type Sandbox } from './sandbox.js';
import { parseUnit } from './unit-file.js';

// The first line of every file install-unit writes: uninstall-unit and a second install-unit only replace or remove
// files that carry it, never a unit an admin wrote by hand.
export const INSTALLED_MARK = '# Written by `xo-immutable-backups install-unit`';
export const PATHS_DROP_IN = 'paths.conf';

export interface Installation {
  // The node binary and the package folder of this installation.
  node: string;
  packageRoot: string;
}

// Pure: the packaged unit with ExecStart= pointing at this installation, and Documentation= adding its own docs to
// the man pages the template names.
export function renderUnit(template: string, installation: Installation, configFile: string): string {
  const bin = path.join(installation.packageRoot, 'bin', 'xo-immutable-backups.js');
  const execStart = [installation.node, bin, 'protect', '--config', configFile].map(execWord).join(' ');
  const docs = ['README.md', 'docs/installation.md', 'docs/troubleshooting.md']
    .map((doc) => pathToFileURL(path.join(installation.packageRoot, doc)).href)
    .join(' ');
  const body = template
    .replace(/^Documentation=(.*)$/m, (_line, links: string) => `Documentation=${links} ${docs}`)
    .replace(/^ExecStart=.*$/m, `ExecStart=${execStart}`);
  const header = [
    `${INSTALLED_MARK} from ${path.join(installation.packageRoot, 'systemd', 'xo-immutable-backups.service')}.`,
    '# Run it again after an upgrade or a config change; it replaces this file and paths.conf in the .d folder.',
    '# Local changes go in a drop-in of your own (systemctl edit xo-immutable-backups), which it leaves alone.',
    `# ExecStart= below is this installation; ReadWritePaths= come from ${configFile} (paths.conf).`,
    '#',
  ].join('\n');
  return `${header}\n${body}`;
}

// Pure: the drop-in that makes every path the daemon writes writable, from the config. It empties the packaged
// unit's ReadWritePaths= first, so only configured paths are writable.
export function renderPathsDropIn(config: Config, configFile: string, base: Sandbox): string {
  const managed = base.readWrite.filter((p) => p.setting !== 'ReadWritePaths');
  const covered = (p: string): boolean => managed.some((m) => p === m.path || p.startsWith(`${m.path}/`));
  const writable = [
    ...config.remotes.map((r) => r.root),
    ...(covered(config.indexPath) ? [] : [config.indexPath]),
    ...(config.metricsFile === undefined ? [] : [path.dirname(config.metricsFile)]),
  ];
  const underHome = writable.some((p) => ['/home', '/root', '/run/user'].some((h) => p === h || p.startsWith(`${h}/`)));
  return [
    `${INSTALLED_MARK} from ${configFile}.`,
    '# Run it again after changing remotes, indexPath or metricsFile in the config; it replaces this file.',
    '[Service]',
    '# What the daemon writes: each remote root, the index (unless StateDirectory= holds it), the metrics folder.',
    '# "-": a path missing at start is skipped by systemd, and the daemon reports it (exit 3, retried) instead of',
    '# the service failing with 226/NAMESPACE.',
    'ReadWritePaths=',
    ...[...new Set(writable)].map((p) => `ReadWritePaths=${unitPath(`-${p}`)}`),
    ...(underHome
      ? [
          '# A path above is under /home, /root or /run/user, which ProtectHome=yes would hide: read-only, and',
          '# ReadWritePaths= above makes that path writable again.',
          'ProtectHome=read-only',
        ]
      : []),
    '',
  ].join('\n');
}

// The sandbox the packaged unit sets up on its own, before any drop-in.
export function templateSandbox(template: string): Sandbox {
  return sandboxOf(parseUnit([{ path: 'template', text: template }]));
}

// One word of ExecStart=: % and $ are systemd's specifier and variable signs; quoted when it holds a space.
function execWord(word: string): string {
  const escaped = word.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  return /[\s"'\\;]/.test(escaped) ? `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"` : escaped;
}

// A path in ReadWritePaths=: % is a specifier sign; quoted when it holds a space.
function unitPath(p: string): string {
  const escaped = p.replace(/%/g, '%%');
  return /[\s"'\\]/.test(escaped) ? `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"` : escaped;
}
