import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderUnit } from '../../src/systemd/install.js';
import { tempFolder } from '../support/remote.js';
import { hasCommand } from '../support/tools.js';

const template = readFileSync('systemd/xo-immutable-backups.service', 'utf8');
const documentation = (unit: string): string[] => /^Documentation=(.*)$/m.exec(unit)![1]!.split(' ');

describe('the unit Documentation=', () => {
  it("names the package's man pages, which it ships", () => {
    const links = documentation(template);
    expect(links.slice(0, 2)).toEqual(['man:xo-immutable-backups(8)', 'man:xo-immutable-backups.json(5)']);
    const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as { man: string[] };
    for (const link of links.filter((l) => l.startsWith('man:xo-immutable-backups'))) {
      const [, page, section] = /^man:(.+)\((\d)\)$/.exec(link)!;
      expect(manifest.man).toContain(`./man/${page}.${section}`);
    }
  });

  // systemd-analyze verify runs man for each man: link; the pages are laid out as npm install -g links them.
  it.skipIf(!hasCommand('systemd-analyze'))('opens with man once installed (systemd-analyze verify)', async () => {
    const manpath = await tempFolder();
    const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as { man: string[] };
    for (const page of manifest.man) {
      const section = path.join(manpath, `man${/\.(\d)$/.exec(page)![1]!}`);
      mkdirSync(section, { recursive: true });
      copyFileSync(page, path.join(section, path.basename(page)));
    }
    const verify = spawnSync('systemd-analyze', ['verify', 'systemd/xo-immutable-backups.service'], {
      encoding: 'utf8',
      env: { ...process.env, MANPATH: `${manpath}:` },
    });
    expect(verify.stderr).not.toMatch(/Command 'man .*' failed/);
  });

  it('is kept by install-unit, which adds the installed copy of the docs', () => {
    const root = '/usr/local/lib/node_modules/xo-immutable-backups';
    const unit = renderUnit(
      template,
      { node: '/usr/bin/node', packageRoot: root },
      '/etc/xo-immutable-backups/config.json',
    );
    expect(documentation(unit)).toEqual([
      ...documentation(template),
      `file://${root}/README.md`,
      `file://${root}/docs/installation.md`,
      `file://${root}/docs/troubleshooting.md`,
    ]);
  });
});
