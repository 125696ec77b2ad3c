import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmdirSync } from 'node:fs';
import { copyFile, mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempFolder } from '../support/remote.js';
import { requireInCi } from '../support/tools.js';

// install-unit judges this installation as the service would see it, and a checkout under /tmp or /home is hidden
// from the service (PrivateTmp=, ProtectHome=). The tests run the CLI from a bind mount of the checkout under
// /var/lib, so they pass wherever the clone lives.
const INSTALLED = mkdtempSync('/var/lib/xo-immutable-test-');
execFileSync('mount', ['--bind', path.resolve('.'), INSTALLED]);
afterAll(() => {
  execFileSync('umount', [INSTALLED]);
  rmdirSync(INSTALLED);
});
const BIN = path.join(INSTALLED, 'bin/xo-immutable-backups.js');
const UNIT = 'etc/systemd/system/xo-immutable-backups.service';
const DROP_IN = 'etc/systemd/system/xo-immutable-backups.service.d/paths.conf';

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000 });
}

// A system under a temp folder (as systemctl --root sees one): /etc/xo-immutable-backups/config.json and the remotes.
async function system(config: object, folders: string[] = []): Promise<{ root: string; config: string }> {
  const root = await tempFolder();
  for (const folder of folders) await mkdir(path.join(root, folder), { recursive: true });
  const file = path.join(root, 'etc/xo-immutable-backups/config.json');
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, JSON.stringify(config));
  return { root, config: file };
}

const TWO_REMOTES = {
  indexPath: '/srv/xo-index',
  metricsFile: '/var/lib/node_exporter/textfile_collector/xo.prom',
  remotes: {
    main: { root: '/mnt/nfs/xo', immutabilityDuration: '7d' },
    home: { root: '/home/backup/xo', immutabilityDuration: '7d' },
  },
};

function checkLines(root: string, config: string): string[] {
  const result = run('check', '--config', config, '--root', root);
  return result.stdout.split('\n').filter((l) => / systemd unit/.test(l) || /^ {5}fix: /.test(l));
}

describe('install-unit and check against the installed unit', () => {
  it('check fails on a copied unit that leaves a remote read-only, and passes once install-unit wrote the drop-in', async () => {
    const sys = await system(TWO_REMOTES, ['mnt/nfs/xo', 'home/backup/xo', 'var/lib/node_exporter/textfile_collector']);
    expect(checkLines(sys.root, sys.config).join('\n')).toMatch(
      /FAIL systemd unit: xo-immutable-backups.service is not installed\n {5}fix: xo-immutable-backups install-unit/,
    );

    // What the install guide used to say: copy the packaged unit.
    await mkdir(path.join(sys.root, 'etc/systemd/system'), { recursive: true });
    await copyFile('systemd/xo-immutable-backups.service', path.join(sys.root, UNIT));
    const before = checkLines(sys.root, sys.config).join('\n');
    expect(before).toMatch(/FAIL systemd unit: remote "main" root: \/mnt\/nfs\/xo is read-only for the service/);
    expect(before).toMatch(/FAIL systemd unit: remote "home" root: .*ProtectHome=yes hides/);
    expect(before).toMatch(/FAIL systemd unit: indexPath: .*does not exist|FAIL systemd unit: indexPath: .*read-only/);
    expect(before).toMatch(/FAIL systemd unit: metricsFile's folder/);
    expect(before).toContain('fix: run `xo-immutable-backups install-unit`');

    // A copy is not replaced silently: --force says the admin knows it holds no other change.
    expect(run('install-unit', '--config', sys.config, '--root', sys.root).stderr).toContain('--force');
    const install = run('install-unit', '--config', sys.config, '--root', sys.root, '--force');
    expect(install.stderr).toBe('');
    expect(install.status).toBe(0);
    expect(install.stdout).toContain('next, on that system: systemctl enable --now xo-immutable-backups');
    const unit = readFileSync(path.join(sys.root, UNIT), 'utf8');
    expect(unit).toContain(
      `ExecStart=${process.execPath} ${BIN} protect --config /etc/xo-immutable-backups/config.json\n`,
    );
    // Documentation= names this installation's own docs, which exist.
    const docs = /^Documentation=(.*)$/m
      .exec(unit)![1]!
      .split(' ')
      .filter((d) => d.startsWith('file://'));
    expect(docs.length).toBeGreaterThan(0);
    for (const doc of docs) expect(existsSync(new URL(doc)), doc).toBe(true);
    const dropIn = readFileSync(path.join(sys.root, DROP_IN), 'utf8');
    expect(dropIn.split('\n').filter((l) => /^(ReadWritePaths|ProtectHome)=/.test(l))).toEqual([
      'ReadWritePaths=',
      'ReadWritePaths=-/mnt/nfs/xo',
      'ReadWritePaths=-/home/backup/xo',
      'ReadWritePaths=-/srv/xo-index',
      'ReadWritePaths=-/var/lib/node_exporter/textfile_collector',
      'ProtectHome=read-only',
    ]);
    // The index must exist for its ReadWritePaths= to apply: install-unit created it.
    expect(existsSync(path.join(sys.root, 'srv/xo-index'))).toBe(true);

    const after = checkLines(sys.root, sys.config);
    expect(after.filter((l) => l.startsWith('FAIL'))).toEqual([]);
    expect(after.join('\n')).toContain('OK   systemd unit: sandbox');
    expect(after.join('\n')).toMatch(/OK {3}systemd unit: capabilities: keeps .*CAP_CHOWN/);
    expect(after.join('\n')).toContain('xo-immutable-backups.service.d/paths.conf');

    // An admin's own drop-in read after paths.conf that empties the list: check sees it, as systemd would.
    await writeFile(
      path.join(sys.root, 'etc/systemd/system/xo-immutable-backups.service.d/zz-local.conf'),
      '[Service]\nReadWritePaths=\n',
    );
    expect(checkLines(sys.root, sys.config).join('\n')).toMatch(/FAIL systemd unit: remote "main" root/);

    // A unit installed before CAP_CHOWN, as a drop-in takes it away: a warning naming the fix, not a failure.
    await writeFile(
      path.join(sys.root, 'etc/systemd/system/xo-immutable-backups.service.d/zz-local.conf'),
      '[Service]\nCapabilityBoundingSet=~CAP_CHOWN\n',
    );
    expect(checkLines(sys.root, sys.config).join('\n')).toMatch(
      /OK {3}systemd unit: capabilities: WARNING: .*CAP_CHOWN.*install-unit/,
    );
  });

  it('gives systemd the settings check reads (systemd-analyze verify on the installed files)', async (ctx) => {
    if (spawnSync('systemd-analyze', ['--version']).status !== 0) ctx.skip();
    const sys = await system(TWO_REMOTES);
    expect(run('install-unit', '--config', sys.config, '--root', sys.root).status).toBe(0);
    const analyzed = spawnSync(
      'systemd-analyze',
      ['verify', `--root=${sys.root}`, '/etc/systemd/system/xo-immutable-backups.service'],
      { encoding: 'utf8', env: { ...process.env, SYSTEMD_LOG_LEVEL: 'debug' } },
    );
    const setting = (name: string): string | undefined =>
      new RegExp(`^\\s*${name}: (.*)$`, 'm').exec(analyzed.stdout + analyzed.stderr)?.[1];
    expect(setting('ReadWritePaths')).toBe(
      '-/mnt/nfs/xo -/home/backup/xo -/srv/xo-index -/var/lib/node_exporter/textfile_collector',
    );
    expect(setting('ProtectHome')).toBe('read-only');
    expect(setting('ProtectSystem')).toBe('strict');
  });

  it('writes nothing for a remote under /tmp (the unit gives the service a private /tmp), naming the fix', async () => {
    const sys = await system({ remotes: { r: { root: '/tmp/xo-remote', immutabilityDuration: '7d' } } });
    const result = run('install-unit', '--config', sys.config, '--root', sys.root);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('FAIL remote "r" root: /tmp/xo-remote is under /tmp, which PrivateTmp=yes');
    expect(result.stderr).toContain('fix: move it out of /tmp');
    expect(existsSync(path.join(sys.root, 'etc/systemd'))).toBe(false);
  });

  it('prints with --dry-run and writes nothing; never replaces a hand-written unit without --force', async () => {
    const sys = await system({ remotes: { r: { root: '/srv/xo-backups', immutabilityDuration: '7d' } } });
    const dry = run('install-unit', '--config', sys.config, '--root', sys.root, '--dry-run');
    expect(dry.status).toBe(0);
    expect(dry.stdout).toContain('ReadWritePaths=-/srv/xo-backups');
    expect(existsSync(path.join(sys.root, 'etc/systemd'))).toBe(false);

    await mkdir(path.join(sys.root, 'etc/systemd/system'), { recursive: true });
    await writeFile(path.join(sys.root, UNIT), '[Service]\nExecStart=/bin/true\n');
    const refused = run('install-unit', '--config', sys.config, '--root', sys.root);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain('was not written by install-unit');
    expect(refused.stderr).toContain('--force');
    expect(readFileSync(path.join(sys.root, UNIT), 'utf8')).toBe('[Service]\nExecStart=/bin/true\n');
    expect(run('install-unit', '--config', sys.config, '--root', sys.root, '--force').status).toBe(0);
    expect(readFileSync(path.join(sys.root, UNIT), 'utf8')).toContain('install-unit');
  });
});

// What install-unit writes for the shells: a bash file per command name, one zsh file.
const BASH_DIR = 'usr/share/bash-completion/completions';
const ZSH_FILE = 'usr/local/share/zsh/site-functions/_xo-immutable-backups';
const NAMES = ['xo-immutable-backups', 'xo-immutable-remote', 'xo-lift-remote-immutability'];
const BASH_COMPLETION = '/usr/share/bash-completion/bash_completion';

// In a real bash with bash-completion loaded, data folders pointed into ROOT: what the first Tab after WORDS offers
// (the loader finds the command's file on demand, as at a prompt). NO-COMPLETION: bash-completion found none of ours.
function bashOffers(root: string, words: string[]): string[] {
  const driver = [
    `source ${BASH_COMPLETION}`,
    `_completion_loader ${words[0]!}`,
    `[[ $(complete -p ${words[0]!} 2>/dev/null) == *' -F _xo_immutable_backups '* ]] || { echo OFFER:NO-COMPLETION; exit; }`,
    `COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; COMPREPLY=()`,
    '_xo_immutable_backups',
    'printf \'OFFER:%s\\n\' "${COMPREPLY[@]}"',
  ].join('\n');
  const run = spawnSync('bash', ['--norc', '--noprofile', '-c', driver], {
    encoding: 'utf8',
    env: {
      ...process.env,
      XDG_DATA_DIRS: path.join(root, 'usr/share'),
      BASH_COMPLETION_USER_DIR: path.join(root, 'none'),
    },
  });
  expect(run.stderr).toBe('');
  return [...run.stdout.matchAll(/^OFFER:(.+)$/gm)].map((m) => m[1]!);
}

describe('install-unit and the shell completion', () => {
  const bashCompletion = existsSync(BASH_COMPLETION) || process.env.CI !== undefined;
  it.skipIf(!bashCompletion)(
    'writes a bash file per command name that bash-completion loads, refreshes it, and uninstall-unit removes it',
    async () => {
      const sys = await system({ remotes: { r: { root: '/srv/xo-backups', immutabilityDuration: '7d' } } });
      const dry = run('install-unit', '--config', sys.config, '--root', sys.root, '--dry-run');
      expect(dry.status).toBe(0);
      for (const name of NAMES) expect(dry.stdout).toContain(`would write ${path.join(sys.root, BASH_DIR, name)}`);
      expect(dry.stdout).toContain(`would write ${path.join(sys.root, ZSH_FILE)}`);
      expect(existsSync(path.join(sys.root, 'usr'))).toBe(false);
      expect(bashOffers(sys.root, ['xo-immutable-backups', 'lift', '--acc'])).toEqual(['NO-COMPLETION']);

      const install = run('install-unit', '--config', sys.config, '--root', sys.root);
      expect(install.status).toBe(0);
      expect(install.stdout).toContain(`wrote ${path.join(sys.root, BASH_DIR, 'xo-immutable-backups')}`);
      // What --help says, through the file install-unit wrote, for each name the package installs.
      expect(readFileSync(path.join(sys.root, BASH_DIR, 'xo-immutable-backups'), 'utf8')).toBe(
        `${run('completion', 'bash').stdout}`,
      );
      expect(bashOffers(sys.root, ['xo-immutable-backups', 'lift', '--acc'])).toEqual(['--accept-clock']);
      expect(bashOffers(sys.root, ['xo-immutable-backups', 'install-u'])).toEqual(['install-unit']);
      expect(bashOffers(sys.root, ['xo-lift-remote-immutability', '--acc'])).toEqual(['--accept-clock']);
      expect(bashOffers(sys.root, ['xo-immutable-remote', '--conf'])).toEqual(['--config']);

      // An upgrade: a stale script is replaced by this version's; a file install-unit did not write is left alone.
      await writeFile(
        path.join(sys.root, BASH_DIR, 'xo-immutable-backups'),
        '# bash completion for xo-immutable-backups, written by an older version.\ncomplete -W old xo-immutable-backups\n',
      );
      await writeFile(path.join(sys.root, BASH_DIR, 'xo-immutable-remote'), 'complete -W mine xo-immutable-remote\n');
      const again = run('install-unit', '--config', sys.config, '--root', sys.root);
      expect(again.status).toBe(0);
      expect(again.stdout).toContain(
        `left in place (not written by install-unit): ${path.join(sys.root, BASH_DIR, 'xo-immutable-remote')}`,
      );
      expect(bashOffers(sys.root, ['xo-immutable-backups', 'lift', '--acc'])).toEqual(['--accept-clock']);
      expect(readFileSync(path.join(sys.root, BASH_DIR, 'xo-immutable-remote'), 'utf8')).toBe(
        'complete -W mine xo-immutable-remote\n',
      );

      const dryRemove = run('uninstall-unit', '--root', sys.root, '--dry-run');
      expect(dryRemove.stdout).toContain(`would remove ${path.join(sys.root, ZSH_FILE)}`);
      expect(existsSync(path.join(sys.root, ZSH_FILE))).toBe(true);
      const removed = run('uninstall-unit', '--root', sys.root);
      expect(removed.status).toBe(0);
      for (const name of ['xo-immutable-backups', 'xo-lift-remote-immutability'])
        expect(removed.stdout).toContain(`removed ${path.join(sys.root, BASH_DIR, name)}`);
      expect(existsSync(path.join(sys.root, ZSH_FILE))).toBe(false);
      expect(bashOffers(sys.root, ['xo-immutable-backups', 'lift', '--acc'])).toEqual(['NO-COMPLETION']);
      expect(existsSync(path.join(sys.root, BASH_DIR, 'xo-immutable-remote'))).toBe(true);
    },
  );

  const zsh = requireInCi('zsh', 'zsh');
  it.skipIf(!zsh)('writes the zsh file where compinit finds it in $fpath', async () => {
    const sys = await system({ remotes: { r: { root: '/srv/xo-backups', immutabilityDuration: '7d' } } });
    expect(run('install-unit', '--config', sys.config, '--root', sys.root).status).toBe(0);
    expect(readFileSync(path.join(sys.root, ZSH_FILE), 'utf8')).toBe(run('completion', 'zsh').stdout);
    const typed = spawnSync(
      'zsh',
      [
        '-f',
        'test/support/zsh-complete.zsh',
        path.dirname(path.join(sys.root, ZSH_FILE)),
        'xo-lift-remote-immutability --acc',
      ],
      { encoding: 'utf8', timeout: 120_000 },
    );
    expect(typed.status).toBe(0);
    expect([...typed.stdout.matchAll(/OFFER:([^\r\n\x1b]+)/g)].map((m) => m[1])).toEqual(['--accept-clock']);
  });

  it('writes nothing for the shells when the unit is refused', async () => {
    const sys = await system({ remotes: { r: { root: '/tmp/xo-remote', immutabilityDuration: '7d' } } });
    expect(run('install-unit', '--config', sys.config, '--root', sys.root).status).toBe(1);
    expect(existsSync(path.join(sys.root, 'usr'))).toBe(false);
  });
});

describe('uninstall-unit', () => {
  it('refuses while the service is enabled, then removes what install-unit wrote and leaves the rest', async () => {
    const sys = await system({ remotes: { r: { root: '/srv/xo-backups', immutabilityDuration: '7d' } } });
    expect(run('install-unit', '--config', sys.config, '--root', sys.root).status).toBe(0);
    const own = path.join(sys.root, 'etc/systemd/system/xo-immutable-backups.service.d/local.conf');
    await writeFile(own, '[Service]\nNice=5\n');
    const wants = path.join(sys.root, 'etc/systemd/system/multi-user.target.wants');
    await mkdir(wants);
    await symlink('/etc/systemd/system/xo-immutable-backups.service', path.join(wants, 'xo-immutable-backups.service'));

    const refused = run('uninstall-unit', '--root', sys.root);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain(`disable it first: systemctl --root=${sys.root} disable xo-immutable-backups`);
    expect(existsSync(path.join(sys.root, UNIT))).toBe(true);

    spawnSync('rm', [path.join(wants, 'xo-immutable-backups.service')]);
    const removed = run('uninstall-unit', '--root', sys.root);
    expect(removed.status).toBe(0);
    expect(removed.stdout).toContain(`removed ${path.join(sys.root, DROP_IN)}`);
    expect(removed.stdout).toContain(`left in place (not written by install-unit): ${own}`);
    expect(removed.stdout).toContain('lift --all');
    expect(existsSync(path.join(sys.root, UNIT))).toBe(false);
    expect(existsSync(path.join(sys.root, DROP_IN))).toBe(false);
    expect(existsSync(own)).toBe(true);
    expect(run('uninstall-unit', '--root', sys.root).stdout).toContain('nothing to remove');
  });

  it('has --help for both commands, each with its exit codes', () => {
    expect(run('install-unit', '--help').stdout).toMatch(
      /--dry-run[\s\S]*--root[\s\S]*Exit codes:\n {2}0 {2}installed/,
    );
    expect(run('uninstall-unit', '--help').stdout).toMatch(/Exit codes:[\s\S]*1 {2}the service is running or enabled/);
  });
});
