import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { daemonFamilies, daemonMetricNames } from '../support/metrics.js';
import { tempFolder } from '../support/remote.js';
import { requireInCi } from '../support/tools.js';

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { expr: string }[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; query: string | { query: string } }[] };
}

const dashboard = JSON.parse(readFileSync('contrib/grafana/dashboard.json', 'utf8')) as Dashboard;
const promtool = requireInCi('promtool', 'prometheus');
// The labels node_exporter adds to every series of a textfile it serves.
const SCRAPE_LABELS = ['instance', 'job'];

// Every PromQL expression the dashboard runs: its panels' queries and its variables'.
function queries(): { where: string; expr: string }[] {
  const found = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: p.title, expr: t.expr })));
  for (const variable of dashboard.templating.list) {
    const query = typeof variable.query === 'string' ? variable.query : variable.query.query;
    const inner = /^label_values\((.*), *\w+\)$/.exec(query)?.[1];
    if (inner !== undefined) found.push({ where: `variable ${variable.name}`, expr: inner });
  }
  return found;
}

describe('contrib/grafana/dashboard.json', () => {
  it('queries only metrics the daemon writes, with labels they carry', () => {
    const families = daemonFamilies();
    const all = queries();
    expect(all.length).toBeGreaterThan(20);
    for (const { where, expr } of all) {
      const names = daemonMetricNames(expr);
      expect(names.length, `${where}: ${expr}`).toBeGreaterThan(0);
      for (const name of names)
        expect(families.has(name), `${where}: ${name} is not a metric the daemon writes`).toBe(true);
      // A matcher on a label the metric lacks (remote= on a daemon-wide metric) would empty the panel.
      for (const selector of expr.matchAll(/(xo_immutable_backups_[a-z0-9_]+)\{([^}]*)\}/g)) {
        const labels = [...selector[2]!.matchAll(/(\w+)\s*(?:=~|!~|!=|=)\s*"/g)].map((m) => m[1]!);
        const known = [...families.get(selector[1]!)!, ...SCRAPE_LABELS];
        expect(
          labels.filter((l) => !known.includes(l)),
          `${where}: ${selector[0]}`,
        ).toEqual([]);
      }
    }
  });

  it('shows restore points, locks and lifts, errors, security warnings, caps and health', () => {
    const used = new Set(queries().flatMap(({ expr }) => daemonMetricNames(expr)));
    for (const metric of [
      'restore_points_protected',
      'restore_points_unprotected',
      'protected_units',
      'last_lift_success_timestamp_seconds',
      'lock_failures_total',
      'security_warnings_total',
      'watched_folders_cap',
      'index_entries_cap',
      'heartbeat_timestamp_seconds',
      'remote_healthy',
    ])
      expect(used).toContain(`xo_immutable_backups_${metric}`);
  });

  it('is a dashboard Grafana can import: a uid, unique panel ids, panels inside the 24-column grid', () => {
    expect(dashboard.uid).toBe('xo-immutable-backups');
    expect(dashboard.title).not.toBe('');
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels) expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
  });

  // Grafana's own variables replaced by values it could give them; promtool parses each as a recording rule.
  it.skipIf(!promtool)('has queries PromQL parses (promtool check rules)', async () => {
    const folder = await tempFolder();
    const file = path.join(folder, 'dashboard-queries.yml');
    const rules = queries().map(({ expr }, i) => {
      const concrete = expr.replace(/\$__rate_interval/g, '5m').replace(/\$(instance|remote)/g, '.*');
      return `      - record: dashboard:query${i}\n        expr: ${JSON.stringify(concrete)}`;
    });
    writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}\n`);
    const check = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
    expect(`${check.stdout}${check.stderr}`).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(check.status).toBe(0);
  });
});
