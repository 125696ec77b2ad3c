import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/schema.js';
import { validateConfig } from '../../src/config/validate.js';
import { judgeSandbox, pathNeeds, sandboxOf, type SandboxFinding } from '../../src/systemd/sandbox.js';
import { parseUnit } from '../../src/systemd/unit-file.js';

const PACKAGED = readFileSync('systemd/xo-immutable-backups.service', 'utf8');
const CONFIG_FILE = '/etc/xo-immutable-backups/config.json';

function config(raw: { indexPath?: string; metricsFile?: string; roots: string[] }): Config {
  const remotes = Object.fromEntries(raw.roots.map((root, i) => [`r${i}`, { root, immutabilityDuration: '7d' }]));
  const result = validateConfig({ indexPath: raw.indexPath, metricsFile: raw.metricsFile, remotes });
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.config;
}

// The packaged unit and drop-ins (texts of [Service] lines), judged for a config on a machine where `existing` (and
// their parents) exist.
function judge(
  cfg: Config,
  dropIns: string[] = [],
  existing: string[] = ['/srv/xo-backups', '/var/lib/xo-immutable-backups', '/etc'],
): SandboxFinding[] {
  const unit = parseUnit([
    { path: 'xo-immutable-backups.service', text: PACKAGED },
    ...dropIns.map((text, i) => ({ path: `${i}.conf`, text: `[Service]\n${text}\n` })),
  ]);
  return judgeSandbox(sandboxOf(unit), pathNeeds(cfg, CONFIG_FILE), (p) =>
    existing.some((e) => e === p || e.startsWith(`${p}/`)),
  );
}

describe('judgeSandbox: the config against the unit systemd will run', () => {
  it('finds nothing for the packaged unit and the default layout (StateDirectory= holds the index)', () => {
    expect(judge(config({ roots: ['/srv/xo-backups'] }))).toEqual([]);
  });

  it('names a remote outside ReadWritePaths= as read-only under ProtectSystem=strict, with install-unit as the fix', () => {
    const findings = judge(config({ roots: ['/srv/xo-backups', '/mnt/nfs'] }), [], ['/srv/xo-backups', '/mnt/nfs']);
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({ what: 'remote "r1" root', path: '/mnt/nfs' });
    expect(findings[0]!.problem).toMatch(/read-only for the service \(ProtectSystem=strict, .*EROFS/);
    expect(findings[0]!.fix).toContain('xo-immutable-backups install-unit');
    // A drop-in that lists it fixes it; one that empties the list breaks the packaged remote too.
    expect(judge(config({ roots: ['/mnt/nfs'] }), ['ReadWritePaths=-/mnt'], ['/mnt/nfs', '/mnt'])).toEqual([]);
    expect(judge(config({ roots: ['/srv/xo-backups'] }), ['ReadWritePaths='])[0]).toMatchObject({
      path: '/srv/xo-backups',
    });
  });

  it('refuses a remote or index under /tmp with PrivateTmp=yes, even when listed in ReadWritePaths=', () => {
    const findings = judge(
      config({ roots: ['/tmp/remote'], indexPath: '/var/tmp/index' }),
      ['ReadWritePaths=-/tmp/remote -/var/tmp/index'],
      ['/tmp', '/var/tmp'],
    );
    expect(findings.map((f) => f.what)).toEqual(['remote "r0" root', 'indexPath']);
    expect(findings[0]!.problem).toContain('PrivateTmp=yes replaces with a private one');
    expect(judge(config({ roots: ['/tmp/remote'] }), ['PrivateTmp=no', 'ReadWritePaths=/tmp'], ['/tmp'])).toEqual([]);
  });

  it('refuses a remote under /home while ProtectHome=yes hides it, and accepts read-only with ReadWritePaths=', () => {
    const cfg = config({ roots: ['/home/backup/xo'] });
    const existing = ['/home/backup/xo', '/var/lib/xo-immutable-backups'];
    expect(judge(cfg, ['ReadWritePaths=/home/backup/xo'], existing)[0]!.problem).toContain(
      'ProtectHome=yes hides from the service',
    );
    expect(judge(cfg, ['ProtectHome=tmpfs'], existing)[0]!.problem).toContain('ProtectHome=tmpfs');
    expect(judge(cfg, ['ProtectHome=read-only'], existing)[0]!.problem).toMatch(
      /read-only for the service \(ProtectHome=read-only/,
    );
    expect(judge(cfg, ['ProtectHome=read-only', 'ReadWritePaths=-/home/backup/xo'], existing)).toEqual([]);
  });

  it('refuses a path hidden by InaccessiblePaths=, whatever ReadWritePaths= says', () => {
    const findings = judge(config({ roots: ['/srv/xo-backups'] }), ['InaccessiblePaths=-/srv']);
    expect(findings).toHaveLength(1);
    expect(findings[0]!.problem).toContain('hidden from the service by InaccessiblePaths=/srv');
  });

  it('asks to create a missing index whose "-" ReadWritePaths= systemd would skip', () => {
    const findings = judge(config({ roots: ['/srv/xo-backups'], indexPath: '/srv/index' }), [
      'ReadWritePaths=-/srv/index',
    ]);
    expect(findings.map((f) => [f.what, f.fix])).toEqual([['indexPath', 'create it: mkdir -p -m 0700 /srv/index']]);
  });

  it('leaves a missing remote root to the daemon, but names a missing path without "-" (226/NAMESPACE)', () => {
    expect(judge(config({ roots: ['/mnt/late'] }), [], ['/var/lib/xo-immutable-backups'])).toEqual([]);
    const findings = judge(config({ roots: ['/srv/xo-backups'] }), ['ReadWritePaths=/srv/gone']);
    expect(findings).toHaveLength(1);
    expect(findings[0]!.problem).toContain('226/NAMESPACE');
    expect(findings[0]!.fix).toContain('ReadWritePaths=-/srv/gone');
  });

  it("needs the metrics file's folder writable (it is written by rename), and reads + and - prefixes", () => {
    const cfg = config({ roots: ['/srv/xo-backups'], metricsFile: '/var/lib/node_exporter/xo.prom' });
    const existing = ['/srv/xo-backups', '/var/lib/node_exporter'];
    expect(judge(cfg, [], existing).map((f) => f.what)).toEqual(["metricsFile's folder"]);
    expect(judge(cfg, ['ReadWritePaths=+-/var/lib/node_exporter/'], existing)).toEqual([]);
    expect(judge(cfg, ['ReadWritePaths=%S/node_exporter'], existing)).toEqual([]);
  });

  it('knows ProtectSystem=full leaves /srv writable but not /etc', () => {
    const cfg = config({ roots: ['/srv/xo-backups', '/etc/xo'], indexPath: '/var/lib/xo-immutable-backups' });
    const findings = judge(cfg, ['ProtectSystem=full', 'ReadWritePaths='], ['/srv/xo-backups', '/etc/xo', '/var/lib']);
    expect(findings.map((f) => [f.path, /ProtectSystem=full/.test(f.problem)])).toEqual([['/etc/xo', true]]);
  });
});
