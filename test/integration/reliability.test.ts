/**
 * Regression tests of issue 8 ("nothing wedges, crashes or silently drops"), one per defect, each named
 * after it, against a real PostgreSQL. Each fails without its fix.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { loadConfig, type DeepPartial, type EngineConfig } from '../../src/config.js';
import { Checkpoint } from '../../src/checkpoint/checkpoint.js';
import { writeExclusive } from '../../src/checkpoint/log.js';
import { startEmbedded } from '../../src/db/embedded.js';
import { readBatch, FileChangedError } from '../../src/engine/read-batch.js';
import { FileSource } from '../../src/engine/source.js';
import { StreamEngine } from '../../src/engine/stream.js';
import { silentLogger, type Logger } from '../../src/log.js';
import { query as q, startTestDb, type TestDb } from '../support/pg.js';
import { cli, type Run } from '../support/cli.js';
import { csv, HEADER, publish, row, tempDir } from '../support/files.js';

let db: TestDb;
before(async () => {
  db = await startTestDb();
});
after(async () => {
  await (db as TestDb | undefined)?.close(); // undefined when before() failed
});

function engineFor(url: string, dir: string, over: DeepPartial<EngineConfig> = {}, log: Logger = silentLogger, signal?: AbortSignal): StreamEngine {
  const config = loadConfig({
    engine: {
      inputDir: path.join(dir, 'in'),
      checkpointDir: path.join(dir, 'ck'),
      progressFile: path.join(dir, 'progress.jsonl'),
      trigger: { kind: 'available-now' },
      ...over,
    },
  });
  return new StreamEngine({ engine: config.engine, databaseUrl: url, log, signal });
}

async function n(url: string, sql: string, params: unknown[] = []): Promise<number> {
  return Number((await q<{ n: string }>(url, sql, params))[0]!.n);
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function rows(count: number, o: Parameters<typeof row>[0] = {}): string[] {
  return Array.from({ length: count }, () => row(o));
}

/** One line on stderr, naming what is wrong, and no stack trace. */
function assertOneLine(r: Run, names: RegExp): void {
  assert.equal(r.code, 1, `exit code (stderr: ${r.stderr})`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line, got: ${r.stderr}`);
  assert.match(lines[0]!, /^ecomstream: /);
  assert.match(lines[0]!, names);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
}

describe('1. a carriage return inside a field', () => {
  test('a lone \\r in product_name, user_id or session_id is stored as it is, and later files still go in', async () => {
    const url = await db.freshDatabase();
    const dir = await tempDir();
    const cr = [row({ product_name: 'Mouse\rPad' }), row({ user_id: 'U\r1' }), row({ session_id: 'S\r', product_name: 'back\\slash\ttab' })];
    await publish(path.join(dir, 'in'), 'events_1.csv', `${HEADER}\n${cr.join('\n')}\n`);
    await publish(path.join(dir, 'in'), 'events_2.csv', csv(...rows(5)));
    const s = await engineFor(url, dir, { maxFilesPerTrigger: 1 }).run();
    assert.equal(s.batches, 2);
    assert.equal(s.insertedRows, 8);
    const got = await q<{ product_name: string; user_id: string; session_id: string }>(
      url,
      "SELECT product_name, user_id, session_id FROM user_events WHERE product_name IN ('Mouse\rPad', 'back\\slash\ttab') OR user_id = 'U\r1' ORDER BY id",
    );
    assert.deepEqual(
      got.map((r) => [r.product_name, r.user_id, r.session_id]),
      [
        ['Mouse\rPad', 'U000001', 'S0001'],
        ['Wireless Mouse', 'U\r1', 'S0001'],
        ['back\\slash\ttab', 'U000001', 'S\r'],
      ],
    );
  });

  test('a row PostgreSQL refuses is rejected with the server message; the rest of the batch commits, also beside stored duplicates', async () => {
    const url = await db.freshDatabase();
    // A rule the contract does not know, as an operator might add one.
    await q(url, "ALTER TABLE user_events ADD CONSTRAINT test_no_poison CHECK (product_name IS DISTINCT FROM 'poison')");
    const dir = await tempDir();
    const stored = row();
    await publish(path.join(dir, 'in'), 'events_0.csv', csv(stored));
    assert.equal((await engineFor(url, dir).run()).insertedRows, 1);
    const good = rows(1500);
    await publish(path.join(dir, 'in'), 'events_1.csv', csv(...good.slice(0, 700), row({ product_name: 'poison' }), ...good.slice(700)));
    await publish(path.join(dir, 'in'), 'events_2.csv', csv(stored, row({ product_name: 'poison' }), ...rows(10)));
    const s = await engineFor(url, dir).run();
    assert.equal(s.batches, 1);
    assert.equal(s.insertedRows, 1510);
    assert.equal(s.rejectedRows, 2);
    assert.equal(s.duplicateRows, 1);
    const refused = await q<{ source_file: string; line_number: number; detail: string; raw_line: string }>(
      url,
      "SELECT source_file, line_number, detail, raw_line FROM rejected_events WHERE reason = 'rejected_by_database' ORDER BY source_file",
    );
    assert.deepEqual(
      refused.map((r) => [r.source_file, r.line_number]),
      [
        ['events_1.csv', 702],
        ['events_2.csv', 3],
      ],
    );
    for (const r of refused) {
      assert.match(r.detail, /code 23514/);
      assert.match(r.detail, /test_no_poison/);
      assert.match(r.raw_line, /,poison,/);
    }
    assert.equal(await n(url, "SELECT COUNT(*) n FROM rejected_events WHERE reason = 'duplicate_event_id'"), 1);
    assert.equal(await n(url, 'SELECT COUNT(*) n FROM user_events'), 1511);
  });
});

describe('2. a connection lost in the middle of a COPY', () => {
  test('pg_terminate_backend on the engine during its COPY: the batch is retried, no crash, every row once', async () => {
    const url = await db.freshDatabase();
    const dir = await tempDir();
    await publish(path.join(dir, 'in'), 'events_1.csv', csv(...rows(3000)));
    // Hold the table so the engine's COPY waits on the lock, then kill its backend while it waits.
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE user_events IN ACCESS EXCLUSIVE MODE');
    const warnings: string[] = [];
    const log: Logger = { ...silentLogger, warn: (m) => warnings.push(m) };
    const run = engineFor(url, dir, { retryInitialMillis: 50 }, log).run();
    await until(
      'the COPY waiting on the lock',
      async () => (await n(url, "SELECT COUNT(*) n FROM pg_stat_activity WHERE query LIKE 'COPY \"user_events\"%' AND wait_event_type = 'Lock'")) === 1,
    );
    const killed = await q(url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'COPY \"user_events\"%' AND wait_event_type = 'Lock'");
    assert.equal(killed.length, 1);
    await holder.query('COMMIT');
    await holder.end();
    const s = await run;
    assert.equal(s.insertedRows, 3000);
    assert.ok(
      warnings.some((w) => /batch 0 .*database unavailable/.test(w)),
      `a retry was logged: ${warnings.join(' | ')}`,
    );
    assert.equal(await n(url, 'SELECT COUNT(DISTINCT event_id) n FROM user_events'), 3000);
    assert.equal(await n(url, 'SELECT COUNT(*) n FROM user_events'), 3000);
  });

  test('the dashboard answers "database unavailable" when its query connection is killed, and recovers', async () => {
    const { startDashboard } = await import('../../src/dashboard/server.js');
    const url = await db.freshDatabase();
    const dir = await tempDir();
    const config = loadConfig({ dashboard: { port: 0 }, engine: { inputDir: path.join(dir, 'in'), checkpointDir: path.join(dir, 'ck') } });
    const dash = await startDashboard({ config, databaseUrl: url, log: silentLogger });
    try {
      const snapshot = (): Promise<Response> => fetch(`${dash.url}api/snapshot?window=15m`);
      await until('the dashboard ready', async () => (await snapshot()).status === 200);
      const holder = new pg.Client({ connectionString: url });
      await holder.connect();
      await holder.query('BEGIN');
      const tables = (await holder.query<{ t: string }>("SELECT string_agg(quote_ident(tablename), ', ') t FROM pg_tables WHERE schemaname = 'public'"))
        .rows[0]!.t;
      await holder.query(`LOCK TABLE ${tables} IN ACCESS EXCLUSIVE MODE`);
      await new Promise((r) => setTimeout(r, 1100)); // past the snapshot cache
      const pending = snapshot();
      await until(
        'the dashboard query waiting on the lock',
        async () => (await n(url, "SELECT COUNT(*) n FROM pg_stat_activity WHERE application_name = 'ecomstream-dashboard' AND wait_event_type = 'Lock'")) >= 1,
      );
      await q(url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'ecomstream-dashboard%'");
      const res = await pending;
      assert.equal(res.status, 503);
      assert.match(((await res.json()) as { error: string }).error, /database unavailable/);
      await holder.query('COMMIT');
      await holder.end();
      await until('the dashboard recovered', async () => (await snapshot()).status === 200);
    } finally {
      await dash.close();
    }
  });
});

describe('3. a file still being written', () => {
  test('a file written under its final name over seconds is read only once it settled: no row lost', async () => {
    const url = await db.freshDatabase();
    const dir = await tempDir();
    const input = path.join(dir, 'in');
    await fsp.mkdir(input, { recursive: true });
    const stop = new AbortController();
    const run = engineFor(url, dir, { trigger: { kind: 'on-arrival' }, fileSettleMillis: 1000, pollMillis: 100 }, silentLogger, stop.signal).run();
    const fh = await fsp.open(path.join(input, 'events_slow.csv'), 'w');
    await fh.write(`${HEADER}\n`);
    const parts = 8;
    for (let i = 0; i < parts; i++) {
      await fh.write(`${rows(500).join('\n')}\n`);
      await new Promise((r) => setTimeout(r, 300));
    }
    await fh.close();
    await until('all rows stored', async () => (await n(url, 'SELECT COUNT(*) n FROM user_events')) >= parts * 500, 20_000);
    await new Promise((r) => setTimeout(r, 300));
    stop.abort();
    const s = await run;
    assert.equal(s.batches, 1, 'read once, complete');
    assert.equal(await n(url, 'SELECT COUNT(*) n FROM user_events'), parts * 500);
    assert.equal(await n(url, 'SELECT COUNT(*) n FROM rejected_events'), 0);
  });

  test('a file that changes while it is being read is not taken as read', async () => {
    const dir = await tempDir();
    const file = await publish(dir, 'events_1.csv', csv(...rows(200)));
    const st = await fsp.stat(file);
    let appended = false;
    await assert.rejects(
      readBatch(
        { inputDir: dir, files: [{ name: 'events_1.csv', size: st.size, mtimeMs: st.mtimeMs }], readSize: 4096, rules: { batchTimestampMs: Date.now() } },
        {
          withOrigin: false,
          file: () => undefined,
          row: () => undefined,
          flush: async () => {
            if (appended) return;
            appended = true;
            await fsp.appendFile(file, `${row()}\n`);
          },
        },
        () => undefined,
      ),
      (err: unknown) => err instanceof FileChangedError && err.code === 'FILE_CHANGED',
    );
  });
});

describe('4. a processed file overwritten under the same name', () => {
  test('gets one file_modified notice; with --reread-modified its new version is read, rows deduplicated by event_id', async () => {
    const url = await db.freshDatabase();
    const dir = await tempDir();
    const first = rows(10);
    await publish(path.join(dir, 'in'), 'events_1.csv', csv(...first));
    assert.equal((await engineFor(url, dir).run()).insertedRows, 10);

    await publish(path.join(dir, 'in'), 'events_1.csv', csv(...first, ...rows(5)));
    await engineFor(url, dir).run();
    await engineFor(url, dir).run(); // the notice is given once
    assert.equal(await n(url, "SELECT COUNT(*) n FROM rejected_events WHERE reason = 'file_modified' AND line_number = 0 AND source_file = 'events_1.csv'"), 1);
    assert.equal(await n(url, 'SELECT COUNT(*) n FROM user_events'), 10, 'not read again without --reread-modified');

    const second = rows(7);
    await publish(path.join(dir, 'in'), 'events_1.csv', csv(...first.slice(0, 3), ...second));
    const s = await engineFor(url, dir, { rereadModified: true }).run();
    assert.equal(s.insertedRows, 7);
    assert.equal(s.duplicateRows, 3);
    assert.equal(await n(url, "SELECT COUNT(*) n FROM rejected_events WHERE reason = 'file_modified'"), 2);
    assert.equal(await n(url, 'SELECT COUNT(*) n FROM user_events'), 17);
  });
});

describe('5. a lost checkpoint', () => {
  test('offsets and commits without metadata: refused (MISSING_METADATA), nothing written', async () => {
    const url = await db.freshDatabase();
    const dir = await tempDir();
    await publish(path.join(dir, 'in'), 'events_1.csv', csv(...rows(5)));
    await publish(path.join(dir, 'in'), 'events_2.csv', csv(...rows(5)));
    await engineFor(url, dir, { maxFilesPerTrigger: 1 }).run();
    await fsp.rm(path.join(dir, 'ck', 'metadata'));
    await fsp.rm(path.join(dir, 'ck', 'commits', '1'));
    await assert.rejects(engineFor(url, dir).run(), { name: 'CheckpointError', code: 'MISSING_METADATA' });
    assert.equal(fs.existsSync(path.join(dir, 'ck', 'metadata')), false);
    assert.equal(await n(url, 'SELECT COUNT(*) n FROM rejected_events'), 0);
  });

  test('a new checkpoint on files the database holds under another stream: refused unless --new-stream', async () => {
    const url = await db.freshDatabase();
    const dir = await tempDir();
    await publish(path.join(dir, 'in'), 'events_1.csv', csv(...rows(20)));
    await engineFor(url, dir).run();
    await fsp.rm(path.join(dir, 'ck'), { recursive: true });
    await assert.rejects(engineFor(url, dir).run(), { code: 'STREAM_EXISTS' });
    assert.equal(fs.existsSync(path.join(dir, 'ck', 'metadata')), false, 'a refused start leaves no stream behind');
    assert.equal(await n(url, 'SELECT COUNT(*) n FROM rejected_events'), 0);
    const warnings: string[] = [];
    const s = await engineFor(url, dir, { newStream: true }, { ...silentLogger, warn: (m) => warnings.push(m) }).run();
    assert.equal(s.duplicateRows, 20);
    assert.ok(warnings.some((w) => w.includes('--new-stream')));
  });
  test('two landing folders with the same file names into one database: each stream starts; a name alone is not the source', async () => {
    const url = await db.freshDatabase();
    const [a, b] = [await tempDir(), await tempDir()];
    // Same names, same sizes (rows of one length), other files: two regions' generators.
    for (const dir of [a, b])
      for (const name of ['events_20250101_000000_1.csv', 'events_20250101_000000_2.csv']) await publish(path.join(dir, 'in'), name, csv(...rows(5)));
    await engineFor(url, a).run();
    const s = await engineFor(url, b).run();
    assert.equal(s.insertedRows, 10);
    assert.equal(await n(url, 'SELECT COUNT(*) n FROM user_events'), 20);
    assert.equal(await n(url, 'SELECT COUNT(DISTINCT stream_id) n FROM stream_batches'), 2);
    assert.equal(await n(url, 'SELECT COUNT(*) n FROM rejected_events'), 0);
    // The guard still knows folder a's own files when a's checkpoint is lost.
    await fsp.rm(path.join(a, 'ck'), { recursive: true });
    await assert.rejects(engineFor(url, a).run(), { code: 'STREAM_EXISTS', message: /holds 2 files of .* \(same name, size and modification time\)/ });
  });
});

describe('6. files that are there but were never read', () => {
  test('a symlink and a non-UTF-8 name are read; a FIFO, a dangling link and a folder get one file_skipped notice each', async () => {
    const url = await db.freshDatabase();
    const dir = await tempDir();
    const input = path.join(dir, 'in');
    await fsp.mkdir(input);
    await publish(dir, 'target.csv.data', csv(...rows(20)));
    await fsp.symlink(path.join(dir, 'target.csv.data'), path.join(input, 'linked.csv'));
    fs.writeFileSync(Buffer.concat([Buffer.from(`${input}/events_`), Buffer.from([0xff, 0xfe]), Buffer.from('.csv')]), csv(...rows(20)));
    execFileSync('mkfifo', [path.join(input, 'pipe.csv')]);
    await fsp.symlink(path.join(dir, 'nothing-here'), path.join(input, 'dangling.csv'));
    await fsp.mkdir(path.join(input, 'folder.csv'));
    const s = await engineFor(url, dir, { fileSettleMillis: 0 }).run();
    assert.equal(s.insertedRows, 40);
    await engineFor(url, dir, { fileSettleMillis: 0 }).run();
    const notices = await q<{ source_file: string; reason: string }>(url, 'SELECT source_file, reason FROM rejected_events ORDER BY source_file');
    assert.deepEqual(
      notices.map((r) => [r.source_file, r.reason]),
      [
        ['dangling.csv', 'file_skipped'],
        ['folder.csv', 'file_skipped'],
        ['pipe.csv', 'file_skipped'],
      ],
    );
    assert.equal(await n(url, "SELECT COUNT(*) n FROM stream_batches, jsonb_array_elements(files) f WHERE f->>'name' = 'events_\\xff\\xfe.csv'"), 1);
  });
});

describe('7. planning cost', () => {
  test('each batch stats only the files that changed, not the whole backlog', async () => {
    const dir = await tempDir();
    for (let i = 0; i < 2000; i++) await publish(dir, `events_${String(i).padStart(4, '0')}.csv`, 'x');
    const source = new FileSource({ inputDir: dir, settleMs: 1000, rereadModified: false });
    const seen = new Map<string, { size: number; mtimeMs: number }>();
    await source.refresh(seen);
    assert.equal(source.readyCount, 2000);
    const perBatch: number[] = [];
    for (let b = 0; b < 20; b++) {
      const take = source.take(1);
      for (const f of take) seen.set(f.name, { size: f.size, mtimeMs: f.mtimeMs });
      const before = source.cost.statCalls;
      await source.refresh(seen);
      perBatch.push(source.cost.statCalls - before);
    }
    assert.equal(source.readyCount, 1980);
    // Only the processed files in the overwrite sweep (1 to 20 of them) are stat'ed, never the backlog.
    assert.ok(Math.max(...perBatch) <= 20, `stat calls per batch: ${perBatch.join(',')}`);
  });
});

describe('8. start-up while PostgreSQL is still coming up', () => {
  test('the engine retries the first connection with backoff, logging each try, then runs', async () => {
    const base = await tempDir();
    await fsp.chmod(base, 0o755);
    const opts = {
      dataDir: path.join(base, 'pg'),
      port: 24000 + Math.floor(Math.random() * 1000),
      user: 'sparkuser',
      password: 'sparkpass123',
      database: 'ecommerce_events',
    };
    const server = await startEmbedded(opts);
    const { createMigratedDatabase } = await import('../../src/db/migrate.js');
    const url = await createMigratedDatabase(server.url, 'startup');
    await server.stop();
    const dir = await tempDir();
    await publish(path.join(dir, 'in'), 'events_1.csv', csv(...rows(10)));
    const warnings: string[] = [];
    const run = engineFor(
      url,
      dir,
      { retryInitialMillis: 100, retryMaxMillis: 400, startupRetrySeconds: 60 },
      { ...silentLogger, warn: (m) => warnings.push(m) },
    ).run();
    await until('two retries', () => warnings.length >= 2);
    const again = await startEmbedded({ ...opts, port: server.port });
    try {
      const s = await run;
      assert.equal(s.insertedRows, 10);
      assert.ok(
        warnings.every((w) => /^start-up: database unavailable .*retry \d+ in \d+ ms$/.test(w)),
        warnings.join('\n'),
      );
    } finally {
      await again.stop();
    }
  });

  test('it gives up after the bounded time with one line', async () => {
    const dir = await tempDir();
    const r = await cli(['process', '--input', path.join(dir, 'in'), '--checkpoint', path.join(dir, 'ck'), '--trigger', 'once', '--startup-timeout', '1'], {
      DATABASE_URL: 'postgresql://sparkuser:x@127.0.0.1:1/none',
    });
    const last = r.stderr.trim().split('\n').pop()!;
    assert.equal(r.code, 1);
    assert.match(last, /^ecomstream: start-up: PostgreSQL did not answer within 1 s/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });
});

// 9 (a stale lock whose pid was reused) is gone with pid liveness checks: see test/integration/one-writer.test.ts.

describe('10. messages', () => {
  test('a bad port variable is one line naming it, also for --help', async () => {
    assertOneLine(await cli(['--help'], { ECOMSTREAM_PG_PORT: 'abc' }), /ECOMSTREAM_PG_PORT="abc"/);
    assertOneLine(await cli(['query', 'summary'], { ECOMSTREAM_DASHBOARD_PORT: '99999' }), /ECOMSTREAM_DASHBOARD_PORT="99999"/);
  });

  test('a DATABASE_URL that is no URL names the variable, not a host lookup', async () => {
    assertOneLine(await cli(['query', 'summary'], { DATABASE_URL: 'garbage' }), /DATABASE_URL is not a URL/);
    assertOneLine(await cli(['query', 'summary'], { DATABASE_URL: 'mysql://a@b/c' }), /DATABASE_URL has the scheme "mysql"/);
  });

  test('a zero-byte offsets/N names the file', async () => {
    const url = await db.freshDatabase();
    const dir = await tempDir();
    const cp = new Checkpoint(path.join(dir, 'ck'));
    await cp.open();
    await cp.createStream();
    await cp.close();
    fs.writeFileSync(path.join(dir, 'ck', 'offsets', '0'), '');
    await assert.rejects(engineFor(url, dir).run(), (err: Error & { code?: string; file?: string }) => {
      assert.equal(err.code, 'EMPTY_LOG_FILE');
      assert.equal(err.file, path.join(dir, 'ck', 'offsets', '0'));
      assert.match(err.message, /is empty \(0 bytes\)/);
      return true;
    });
  });

  test('a read-only checkpoint folder and a full disk: one line naming the file, no temp file left', async (t) => {
    const dir = await tempDir();
    const mnt = path.join(dir, 'mnt');
    await fsp.mkdir(mnt);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8k', 'tmpfs', mnt], { stdio: 'ignore' });
    } catch {
      t.skip('mounting a small tmpfs needs root (CI runs as root)');
      return;
    }
    try {
      fs.writeFileSync(path.join(mnt, 'filler'), Buffer.alloc(8192 - 512)); // leave less than one offsets entry
      await assert.rejects(writeExclusive(path.join(mnt, '5'), 'x'.repeat(64 * 1024)), { code: 'ENOSPC' });
      assert.deepEqual(fs.readdirSync(mnt), ['filler'], 'no temp file is left behind');
      execFileSync('mount', ['-o', 'remount,ro', mnt]);
      const r = await cli(['process', '--input', path.join(dir, 'in'), '--checkpoint', path.join(mnt, 'ck'), '--trigger', 'once'], { DATABASE_URL: db.url });
      assertOneLine(r, new RegExp(`could not write ${path.join(mnt, 'ck')}: .*\\((EROFS|EACCES)\\)`));
    } finally {
      execFileSync('umount', [mnt]);
    }
  });
});
