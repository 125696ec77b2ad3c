import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { daemonFamilies, daemonMetricNames } from '../support/metrics.js';
import { requireInCi } from '../support/tools.js';
import { docAnchors } from './docs.js';

const RULES = 'contrib/prometheus/alerts.yml';
const TESTS = 'contrib/prometheus/alerts.test.yml';
// The labels node_exporter adds to every series of a textfile it serves.
const SCRAPE_LABELS = ['instance', 'job'];

const rules = readFileSync(RULES, 'utf8');
const ruleTests = readFileSync(TESTS, 'utf8');
const alertNames = [...rules.matchAll(/^\s+- alert: (\w+)$/gm)].map((m) => m[1]!);
const promtool = requireInCi('promtool', 'prometheus');

function runPromtool(...args: string[]): { status: number | null; output: string } {
  const run = spawnSync('promtool', args, { encoding: 'utf8' });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

describe('contrib/prometheus/alerts.yml', () => {
  it('names only metrics the daemon writes', () => {
    const families = daemonFamilies();
    const used = daemonMetricNames(rules);
    expect(used.length).toBeGreaterThan(10);
    expect(used.filter((name) => !families.has(name))).toEqual([]);
  });

  it('covers what an admin must hear of, each with a severity and a runbook in the docs', () => {
    for (const metric of [
      'heartbeat_timestamp_seconds',
      'remote_healthy',
      'lifting_frozen',
      'restore_points_unprotected',
      'pending_units',
      'cap_level',
      'security_warnings_total',
      'lock_failures_total',
      'index_failures_total',
      'lift_failures_total',
    ])
      expect(rules).toContain(`xo_immutable_backups_${metric}`);
    const anchors = docAnchors();
    const blocks = rules.split(/^\s+- alert: /m).slice(1);
    expect(blocks).toHaveLength(alertNames.length);
    for (const block of blocks) {
      const name = /^\w+/.exec(block)![0];
      expect(block, name).toMatch(/severity: (critical|warning)\n/);
      expect(block, name).toMatch(/summary: /);
      expect(block, name).toMatch(/description: /);
      const runbook = /runbook: (\S+)/.exec(block)?.[1];
      expect(runbook, name).toBe(`docs/operations.md#${name.toLowerCase()}`);
      expect(anchors.get('docs/operations.md'), `${runbook} is a heading`).toContain(name.toLowerCase());
    }
  });

  it('is tested with series shaped as the daemon writes them', () => {
    const families = daemonFamilies();
    const series = [...ruleTests.matchAll(/series: '([a-z_:][a-z0-9_:]*)\{([^}]*)\}'/g)];
    expect(series.length).toBeGreaterThan(alertNames.length);
    for (const [, name, labels] of series) {
      if (!name!.startsWith('xo_immutable_backups_')) continue;
      expect(families.has(name!), `${name} is a metric the daemon writes`).toBe(true);
      const names = [...labels!.matchAll(/(\w+)="/g)].map((m) => m[1]!).sort();
      expect(names, name).toEqual([...families.get(name!)!, ...SCRAPE_LABELS].sort());
    }
  });

  it('has a test in which each alert fires', () => {
    const fired = new Set<string>();
    for (const item of ruleTests.split(/^\s+- eval_time: /m).slice(1)) {
      const name = /alertname: (\w+)/.exec(item)?.[1];
      if (name !== undefined && /exp_alerts:\s*\n\s+- exp_labels:/.test(item)) fired.add(name);
    }
    expect(alertNames.filter((name) => !fired.has(name))).toEqual([]);
  });

  it.skipIf(!promtool)('passes promtool check rules (Debian package prometheus)', () => {
    const { status, output } = runPromtool('check', 'rules', RULES);
    expect(output).toContain(`SUCCESS: ${alertNames.length} rules found`);
    expect(status).toBe(0);
  });

  it.skipIf(!promtool)('passes its promtool unit tests (promtool test rules)', () => {
    const { status, output } = runPromtool('test', 'rules', TESTS);
    expect(output).toContain('SUCCESS');
    expect(status).toBe(0);
  });
});
