import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// What `npm pack` (and so `npm publish` or `npm install -g ./x.tgz`) would ship, as npm itself lists it.
describe('the package', () => {
  it('can be published, and ships its licence, changelog and docs', () => {
    const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as Record<string, unknown>;
    expect(manifest.private).toBeUndefined();
    expect(manifest.license).toBe('MIT');
    expect(readFileSync('LICENSE', 'utf8')).toContain('Copyright (c) 2026 the xo-immutable-backups authors');
    const [pack] = JSON.parse(
      execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { encoding: 'utf8' }),
    ) as { files: { path: string }[] }[];
    const files = pack!.files.map((f) => f.path);
    for (const file of ['LICENSE', 'CHANGELOG.md', 'README.md', 'config.sample.json', 'docs/installation.md'])
      expect(files).toContain(file);
    expect(files).toContain('systemd/xo-immutable-backups.service');
    // What an admin's tools take as they are: alert rules (with their tests) and a dashboard.
    for (const file of ['alerts.yml', 'alerts.test.yml']) expect(files).toContain(`contrib/prometheus/${file}`);
    expect(files).toContain('contrib/grafana/dashboard.json');
    // npm install -g links the pages its "man" field lists into <prefix>/share/man.
    for (const page of manifest.man as string[]) expect(files).toContain(page.replace(/^\.\//, ''));
    expect(files).toContain('bin/xo-immutable-backups.js');
    expect(files.some((f) => f.startsWith('dist/cli/'))).toBe(true);
    expect(files.some((f) => f.startsWith('test/') || f.startsWith('src/'))).toBe(false);
  });

  it("links only documentation that exists whatever npm's global prefix", () => {
    const unit = readFileSync('systemd/xo-immutable-backups.service', 'utf8');
    const links = unit.split('\n').filter((l) => l.startsWith('Documentation='));
    for (const link of links) expect(link).not.toContain('file:');
  });
});
