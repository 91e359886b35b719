/**
 * The shipped systemd unit (deploy/systemd/ecomstream.service), checked with systemd's own tools and
 * run as systemd would run it (test/support/systemd.ts says what of the unit is applied, and what is not).
 * The one substitution: the install prefix /opt/ecomstream is this checkout; EnvironmentFile= is the
 * operator's file, so its content (DATABASE_URL, the test database) is given rather than read from /etc.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { PACKAGE_ROOT } from '../../src/db/migrate.js';
import { startTestDb, query, type TestDb } from '../support/pg.js';
import { csv, publish, row, tempDir } from '../support/files.js';
import { parseUnit, passwdEntry, setting, startService } from '../support/systemd.js';
import { missingTool, SYSTEMD_INSTALL } from '../support/tools.js';
import { until } from '../support/until.js';

const UNIT_FILE = path.join(PACKAGE_ROOT, 'deploy', 'systemd', 'ecomstream.service');
const SYSUSERS_FILE = path.join(PACKAGE_ROOT, 'deploy', 'systemd', 'ecomstream.sysusers.conf');
const INSTALL_PREFIX = '/opt/ecomstream';
const unit = parseUnit(fs.readFileSync(UNIT_FILE, 'utf8'));

let db: TestDb | undefined;
before(async () => {
  if (process.getuid?.() === 0) db = await startTestDb();
});
after(async () => {
  await db?.close();
});

test('systemd-analyze verify accepts the unit, and systemd-analyze security rates it OK or better', (t) => {
  const missing = missingTool('systemd-analyze', SYSTEMD_INSTALL);
  if (missing) return t.skip(missing);
  const verify = spawnSync('systemd-analyze', ['verify', UNIT_FILE], { encoding: 'utf8' });
  assert.equal(verify.status, 0, verify.stderr);
  assert.equal(verify.stderr.trim(), '', 'no warnings');
  const security = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', UNIT_FILE], { encoding: 'utf8' });
  const overall = /Overall exposure level for ecomstream\.service: ([\d.]+) (\w+)/.exec(security.stdout);
  assert.ok(overall, security.stdout + security.stderr);
  t.diagnostic(overall[0]);
  assert.ok(['OK', 'SAFE', 'PERFECT'].includes(overall[2]!), overall[0]);
});

test('the unit runs node directly, never npx, and does not use ProcSubset=pid nor MemoryDenyWriteExecute=', () => {
  const exec = setting(unit, 'Service', 'ExecStart') ?? '';
  assert.match(exec, new RegExp(`^/usr/bin/node ${INSTALL_PREFIX}/bin/ecomstream\\.js process `));
  // /proc/locks is where the checkpoint's lock is looked up; V8's JIT needs writable-then-executable memory.
  assert.equal(setting(unit, 'Service', 'ProcSubset'), undefined);
  assert.equal(setting(unit, 'Service', 'MemoryDenyWriteExecute'), undefined);
});

test("ExecStart as the unit's user, clean environment, sandboxed: SIGTERM with a batch in flight commits it and exits 0", async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root: it creates the service user and runs the unit as that user');
  const missing = missingTool('systemd-sysusers', SYSTEMD_INSTALL) ?? missingTool('setpriv', 'util-linux') ?? missingTool('unshare', 'util-linux');
  if (missing) return t.skip(missing);
  const nodeVersion = spawnSync('/usr/bin/node', ['--version'], { encoding: 'utf8' }).stdout.trim();
  if (!/^v(2\d|[3-9]\d)\./.test(nodeVersion)) return t.skip(`the unit runs /usr/bin/node, which is not Node 20 or newer here (${nodeVersion || 'absent'})`);
  const url = db!.url;

  // As the package would: the user from the sysusers file (kept afterwards, like any installed user).
  const sysusers = spawnSync('systemd-sysusers', [SYSUSERS_FILE], { encoding: 'utf8' });
  assert.equal(sysusers.status, 0, sysusers.stderr);
  const user = passwdEntry(setting(unit, 'Service', 'User')!)!;
  assert.ok(user.uid > 0, 'a dedicated user, not root');

  const stateRoot = await tempDir('ecomstream-unit-var-lib-');
  fs.chmodSync(stateRoot, 0o755);
  const state = path.join(stateRoot, 'ecomstream');
  const install = { prefix: INSTALL_PREFIX, source: PACKAGE_ROOT, stage: await tempDir('ecomstream-unit-install-') };
  const service = startService(unit, { install, environmentFile: { DATABASE_URL: url }, stateRoot });
  t.diagnostic(`ExecStart: ${service.argv.join(' ')}`);
  t.diagnostic(`environment: ${Object.keys(service.env).join(' ')}`);
  let stdout = '';
  let stderr = '';
  service.child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  service.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => service.child.on('close', resolve));
  const locker = new pg.Client({ connectionString: url });
  await locker.connect();
  try {
    await until('the engine watches its input', () => stdout.includes('watching /var/lib/ecomstream/input') || service.child.exitCode !== null, 60_000);
    assert.equal(service.child.exitCode, null, `the engine exited at start:\n${stdout}${stderr}`);
    // The batch in flight: blocked behind a lock on user_events until after SIGTERM.
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE user_events');
    // As docs/operations.md says: the landing folder, writable by the user and its group (the producers).
    const input = path.join(state, 'input');
    fs.mkdirSync(input, { recursive: true }); // the engine may have made it already
    fs.chownSync(input, user.uid, user.gid);
    fs.chmodSync(input, 0o2770);
    await publish(input, 'events_0.csv', csv(row(), row(), row({ price: '-1.00' })));
    await until('the batch waits for the lock on user_events', async () => {
      const [r] = await query<{ n: number }>(
        url,
        "SELECT count(*)::int n FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE NOT l.granted AND c.relname = 'user_events'",
      );
      return r!.n > 0;
    });
    service.child.kill('SIGTERM');
    await until('the engine says it is stopping', () => stdout.includes('stopping: finishing the batch in flight'));
    assert.equal(service.child.exitCode, null, 'it waits for the batch in flight');
    await locker.query('COMMIT');
  } finally {
    await locker.end();
    if (service.child.exitCode === null) setTimeout(() => service.child.kill('SIGKILL'), 90_000).unref();
  }
  assert.equal(await exited, 0, `exit status\n${stdout}${stderr}`);

  const batches = await query<{ batch_id: number; inserted_rows: number; rejected_rows: number }>(
    url,
    'SELECT batch_id::int, inserted_rows, rejected_rows FROM stream_batches',
  );
  assert.deepEqual(batches, [{ batch_id: 0, inserted_rows: 2, rejected_rows: 1 }], 'the batch in flight committed');
  assert.equal((await query<{ n: number }>(url, 'SELECT count(*)::int n FROM user_events'))[0]!.n, 2);
  const commit = fs.statSync(path.join(state, 'checkpoint', 'commits', '0'));
  assert.equal(commit.uid, user.uid, "the checkpoint is written as the unit's user");
  assert.equal(commit.mode & 0o077, 0, 'UMask=0077: nothing readable by others');
  assert.ok(fs.existsSync(path.join(state, 'progress.jsonl')));

  const lines = stdout.trim().split('\n');
  const records = lines.map((l) => JSON.parse(l) as { message: string; event?: string });
  const stopping = records.findIndex((r) => r.message.startsWith('stopping:'));
  const committed = records.findIndex((r) => r.event === 'batch_committed');
  assert.ok(stopping >= 0 && committed > stopping, 'SIGTERM arrived while the batch was in flight, and it committed after');
  assert.match(records.at(-1)!.message, /^stopped after 1 batches: 3 rows, 2 inserted/);
});
