/**
 * The shipped Prometheus files (deploy/prometheus/), checked by Prometheus's own promtool: both configs
 * and the alert rules are valid, the rules' unit tests (alerts.test.yml) pass, and every alert has a
 * test that sees it fire.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { PACKAGE_ROOT } from '../../src/db/migrate.js';
import { missingTool, PROMETHEUS_INSTALL } from '../support/tools.js';

const DIR = path.join(PACKAGE_ROOT, 'deploy', 'prometheus');
const missing = missingTool('promtool', PROMETHEUS_INSTALL);

function promtool(...args: string[]): string {
  const r = spawnSync('promtool', args, { cwd: DIR, encoding: 'utf8' });
  assert.equal(r.status, 0, `promtool ${args.join(' ')}:\n${r.stdout}${r.stderr}`);
  return r.stdout + r.stderr;
}

test('promtool check config: the engine scrape config (with its rules) and the Compose profile one', (t) => {
  if (missing) return t.skip(missing);
  for (const file of ['prometheus.yml', 'prometheus-compose.yml']) t.diagnostic(promtool('check', 'config', file).trim().replace(/\s+/g, ' '));
});

test('promtool check rules: alerts.yml', (t) => {
  if (missing) return t.skip(missing);
  assert.match(promtool('check', 'rules', 'alerts.yml'), /SUCCESS: 7 rules found/);
});

test('promtool test rules: alerts.test.yml passes', (t) => {
  if (missing) return t.skip(missing);
  assert.match(promtool('test', 'rules', 'alerts.test.yml'), /SUCCESS/);
});

test('every alert of alerts.yml is seen firing by a unit test', () => {
  const rules = parse(fs.readFileSync(path.join(DIR, 'alerts.yml'), 'utf8')) as { groups: { rules: { alert: string }[] }[] };
  const tests = parse(fs.readFileSync(path.join(DIR, 'alerts.test.yml'), 'utf8')) as {
    tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
  };
  const fired = new Set(tests.tests.flatMap((x) => x.alert_rule_test ?? []).flatMap((a) => (a.exp_alerts.length > 0 ? [a.alertname] : [])));
  for (const { alert } of rules.groups.flatMap((g) => g.rules)) assert.ok(fired.has(alert), `${alert}: no test expects it to fire`);
});
