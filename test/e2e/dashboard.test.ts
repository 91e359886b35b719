/**
 * The dashboard in a real browser: Debian's Chromium driven by playwright-core (Playwright's own browser
 * download does not work on our machines). Embedded PostgreSQL, the dashboard, and the real stream engine
 * as a subprocess (`ecomstream process --trigger on-arrival`); publish a CSV file with a bad row into the
 * landing folder and watch the page: counters, a chart, the rejected row's reason, the batch. Then stop
 * the database and watch the page say so and recover. Screenshots go to test-output/.
 *
 * When the engine's `process` command is not available (a checkout without it), the batch is committed
 * through SQL the way the sink does instead, and the test says so in its output.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { defaults, loadConfig } from '../../src/config.js';
import { HEADER_LINE, type Reason } from '../../src/contract/event.js';
import { startDashboard } from '../../src/dashboard/server.js';
import { freePort, startEmbedded, type EmbeddedServer } from '../../src/db/embedded.js';
import { startOps } from '../../src/ops/index.js';
import { silentLogger } from '../../src/log.js';
import { startTestDb, type TestDb } from '../support/pg.js';
import { chromiumMissing, commitBatch, launchChromium, tempDir, type EventRow } from './helpers.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const OUT = path.join(ROOT, 'test-output');
const MAIN = path.join(ROOT, 'src', 'cli', 'main.ts');

/** Runs the CLI from source through tsx, so the test does not depend on a fresh `dist/`. */
function cliArgs(args: string[]): string[] {
  // tsx by its resolved location: the engine runs with its working folder elsewhere (data/ goes there).
  return [
    '--import',
    import.meta.resolve('tsx'),
    '--input-type=module',
    '-e',
    `const m = await import(${JSON.stringify(MAIN)}); await m.main(${JSON.stringify(args)});`,
  ];
}

function engineAvailable(): boolean {
  const r = spawnSync(process.execPath, cliArgs(['process', '--help']), { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  return r.status === 0 && r.stdout.includes('--input') && r.stdout.includes('--trigger');
}

let db: TestDb;
let work: string;
before(async () => {
  db = await startTestDb();
  work = await tempDir('dash-e2e-');
  await fsp.mkdir(OUT, { recursive: true });
});
after(async () => {
  await (db as TestDb | undefined)?.close(); // undefined when before() failed
  if (work) await fsp.rm(work, { recursive: true, force: true });
});

function csvRows(n: number, extraLines: string[]): { text: string; ids: string[]; events: Pick<EventRow, 'event_type' | 'price'>[] } {
  const now = Date.now();
  const lines = [HEADER_LINE];
  const events: Pick<EventRow, 'event_type' | 'price'>[] = [];
  const ids: string[] = [];
  const categories = ['Electronics', 'Books', 'Clothing', 'Home & Kitchen', 'Sports & Outdoors'];
  const devices = ['mobile', 'desktop', 'tablet'];
  for (let i = 0; i < n; i++) {
    const purchase = i % 4 === 0;
    const price = (10 + ((i * 37) % 200) + 0.99).toFixed(2);
    // A stable catalogue, as the generator's: product id -> name -> category.
    const product = i % 7;
    const category = categories[product % categories.length]!;
    const name = `${category.split(' ')[0]} item ${product}`;
    const id = crypto.randomUUID();
    ids.push(id);
    lines.push(
      [
        id,
        `U${1000 + (i % 13)}`,
        purchase ? 'purchase' : 'view',
        `P${100 + product}`,
        `"${name}"`,
        `"${category}"`,
        price,
        new Date(now - 2000 - i * 10).toISOString(),
        `S${i % 5}`,
        devices[i % 3],
      ].join(','),
    );
    events.push({ event_type: purchase ? 'purchase' : 'view', price });
  }
  lines.push(...extraLines);
  return { text: `${lines.join('\n')}\n`, ids, events };
}

/** Atomic publish, as the generator does: a hidden temp file, then a hard link under the final name. */
async function publish(dir: string, name: string, text: string): Promise<void> {
  const tmp = path.join(dir, `.${name}.tmp`);
  await fsp.writeFile(tmp, text);
  await fsp.link(tmp, path.join(dir, name));
  await fsp.rm(tmp);
}

async function text(page: Page, selector: string): Promise<string> {
  return ((await page.textContent(selector)) ?? '').trim();
}

// Before the test below, which stops this file's server at its end.
test('a stalled stream shows the red banner, and it goes when the stall ends', { skip: chromiumMissing(), timeout: 120_000 }, async () => {
  const url = await db.freshDatabase();
  const opsConfig = {
    ...defaults().ops,
    metricsHost: '127.0.0.1',
    metricsPort: await freePort(29464 + Math.floor(Math.random() * 500)),
    stallAfterSeconds: 0.5,
  };
  // The engine's health monitor and endpoint as `process` runs them, fed the events of a stuck stream.
  const ops = await startOps({ ops: opsConfig, databaseUrl: url, log: silentLogger, strict: true });
  const config = loadConfig(
    {
      dashboard: { port: 0, host: '127.0.0.1' },
      ops: opsConfig,
      engine: { inputDir: path.join(work, 'stall-in'), checkpointDir: path.join(work, 'stall-ck') },
    },
    work,
    {},
  );
  const dash = await startDashboard({ config, databaseUrl: url, log: silentLogger });
  const browser = await launchChromium('dash-chromium-', { viewport: { width: 1440, height: 900 } });
  const context = browser.context;
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto(dash.url);
    await page.waitForSelector('#conn[data-state="live"]');
    assert.equal(await page.isVisible('#banner'), false);
    ops.observer.started?.({ streamId: 's', checkpointDir: config.engine.checkpointDir });
    ops.observer.running?.();
    ops.observer.batchStarted?.({ batchId: 3, files: [], replay: false }); // a batch that never commits
    await page.waitForSelector('#conn[data-state="stalled"]', { timeout: 10_000 });
    assert.equal(await page.isVisible('#banner'), true);
    assert.match(await text(page, '#banner'), /Stream stalled: batch 3 in flight/);
    const colours = await page.evaluate(() => [
      getComputedStyle(document.getElementById('banner')!).borderTopColor,
      getComputedStyle(document.getElementById('conn')!).color,
    ]);
    assert.equal(colours[0], colours[1], 'the banner and the status are both the failure red (--bad)');
    await page.screenshot({ path: path.join(OUT, 'dashboard-stalled.png') });
    ops.observer.stopped?.(); // the engine stops: no stall any more
    await page.waitForSelector('#conn[data-state="live"]', { timeout: 10_000 });
    assert.equal(await page.isVisible('#banner'), false);
  } finally {
    await browser.close();
    await dash.close();
    await ops.close();
  }
});

test('the page fills with live data, shows rejects, and survives the database going away', { skip: chromiumMissing(), timeout: 180_000 }, async (t) => {
  const input = path.join(work, 'input');
  const checkpoint = path.join(work, 'checkpoint');
  await fsp.mkdir(input, { recursive: true });
  const config = loadConfig(
    { dashboard: { port: 0, host: '127.0.0.1' }, engine: { inputDir: input, checkpointDir: checkpoint, progressFile: path.join(work, 'progress.jsonl') } },
    work,
    {},
  );
  const dash = await startDashboard({ config, databaseUrl: db.url, log: silentLogger });

  const useEngine = engineAvailable();
  let engine: ChildProcess | undefined;
  let engineLog = '';
  if (useEngine) {
    engine = spawn(
      process.execPath,
      cliArgs(['process', '--input', input, '--checkpoint', checkpoint, '--trigger', 'on-arrival', '--progress-file', path.join(work, 'progress.jsonl')]),
      { cwd: work, env: { ...process.env, DATABASE_URL: db.url }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    engine.stdout!.on('data', (d: Buffer) => (engineLog += d.toString()));
    engine.stderr!.on('data', (d: Buffer) => (engineLog += d.toString()));
    // The engine holds the checkpoint lock once it is watching the folder.
    for (let i = 0; !fs.existsSync(path.join(checkpoint, 'lock')); i++) {
      assert.ok(i < 300, `engine did not start: ${engineLog}`);
      assert.equal(engine.exitCode, null, `engine exited: ${engineLog}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } else {
    t.diagnostic('the engine (`ecomstream process`) is not available: committing the batch through SQL as the sink does');
  }

  const browser = await launchChromium('dash-chromium-', { viewport: { width: 1440, height: 900 } });
  const context = browser.context;
  const problems: string[] = [];
  let server: EmbeddedServer | undefined;
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
    });

    await page.goto(dash.url);
    await page.waitForSelector('body[data-ready="true"]');
    await page.waitForSelector('#conn[data-state="live"]');
    assert.equal(await text(page, '#m-events'), '0');
    assert.equal(await text(page, '#m-backlog'), '0');
    assert.match(await text(page, '#m-engine'), useEngine ? /Running/ : /Unknown/);
    const chartBefore = await page.locator('#chart-throughput canvas').screenshot();
    assert.match(await text(page, '#sum-throughput'), /^0 batches /);

    // Keyboard: the first Tab reaches the skip link, and the window can be changed without a mouse.
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content');
    await page.focus('#window');
    await page.keyboard.press('ArrowDown');
    await page.waitForFunction(() => (document.getElementById('window') as HTMLSelectElement).value === '15m');
    await page.selectOption('#window', '5m');

    /** Publish a file for the engine, or (no engine here) commit its rows the way the sink would. */
    const deliver = async (
      name: string,
      csv: string,
      rejects: { line: number; raw: string; reason: Reason; detail: string }[],
      batchId: number,
    ): Promise<void> => {
      if (useEngine) return publish(input, name, csv);
      const rows = csv
        .trim()
        .split('\n')
        .slice(1)
        .filter((l) => !rejects.some((r) => r.raw === l))
        .map((l) => {
          const [event_id, user_id, event_type, product_id, product_name, product_category, price, event_timestamp, session_id, device_type] = l
            .split(',')
            .map((v) => v.replace(/^"|"$/g, ''));
          return { event_id, user_id, event_type, product_id, product_name, product_category, price, event_timestamp, session_id, device_type } as EventRow;
        });
      await commitBatch(db.url, {
        streamId: 'e2e',
        batchId,
        events: rows,
        rejects: rejects.map((r) => ({ file: name, ...r })),
        files: [{ name, size: csv.length, mtimeMs: Date.now() }],
      });
    };

    // Publish one file: 40 valid events and one row with an event_type the contract does not allow.
    const badLine = `${crypto.randomUUID()},U1,refund,P1,Thing,Books,5.00,${new Date().toISOString()},S1,mobile`;
    const { text: csv, ids, events } = csvRows(40, [badLine]);
    const name = 'events_20250101_120000_1.csv';
    const publishedAt = Date.now();
    await deliver(name, csv, [{ line: 42, raw: badLine, reason: 'invalid_event_type', detail: 'event_type "refund" is not one of view, purchase' }], 0);

    await page.waitForFunction(() => document.getElementById('m-events')?.textContent.trim() === '40', undefined, { timeout: 15_000 });
    const shownAfterMs = Date.now() - publishedAt;
    t.diagnostic(`counters updated ${shownAfterMs} ms after the file was published`);
    const purchases = events.filter((e) => e.event_type === 'purchase');
    assert.equal(await text(page, '#m-purchases'), String(purchases.length));
    const revenue = purchases.reduce((a, e) => a + Number(e.price), 0);
    assert.equal(await text(page, '#m-revenue'), revenue.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 }));
    assert.equal(await text(page, '#m-rejected'), '1');

    // The rejected row's reason and its raw line appear in Quality.
    await page.waitForSelector('#q-reasons tr[data-reason="invalid_event_type"]');
    const reasonRow = await text(page, '#q-reasons tr[data-reason="invalid_event_type"]');
    assert.match(reasonRow, /refund/);

    // The throughput chart moved, and so did its text summary.
    await page.waitForFunction(() => (document.getElementById('sum-throughput')?.textContent ?? '').startsWith('1 batch '));
    const chartAfter = await page.locator('#chart-throughput canvas').screenshot();
    assert.notDeepEqual(chartAfter, chartBefore, 'the throughput chart changed');

    // The batch is listed with its file, and business panels are filled.
    assert.match(await text(page, '#b-table tbody tr'), new RegExp(name.replace(/\./g, '\\.')));
    assert.match(await text(page, '#biz-categories'), /Electronics/);
    assert.match(await text(page, '#biz-types'), /purchase/);
    assert.equal(await text(page, '#m-backlog'), '0');

    // A second file a few seconds later, in the next 5 s bucket: 25 new events, one event already stored
    // by the first file (a duplicate across batches) and a negative price.
    await new Promise((r) => setTimeout(r, 5000));
    const negative = `${crypto.randomUUID()},U2,purchase,P100,Thing,Books,-3.00,${new Date().toISOString()},S1,desktop`;
    const repeated = csv.split('\n').find((l) => l.startsWith(ids[3]!))!;
    const second = csvRows(25, [repeated, negative]);
    await deliver('events_20250101_120005_1.csv', second.text, [{ line: 28, raw: negative, reason: 'negative_price', detail: 'price -3.00 is below 0' }], 1);
    await page.waitForFunction(() => document.getElementById('m-events')?.textContent.trim() === '65', undefined, { timeout: 15_000 });
    await page.waitForFunction(() => document.getElementById('q-duplicates')?.textContent.trim() === '1');
    assert.equal(await text(page, '#m-rejected'), '2');
    await page.waitForSelector('#q-reasons tr[data-reason="negative_price"]');
    await page.waitForSelector('#q-reasons tr[data-reason="duplicate_event_id"]');
    await page.waitForFunction(() => (document.getElementById('sum-throughput')?.textContent ?? '').startsWith('2 batches '));
    assert.equal(await page.locator('#b-table tbody tr').count(), 2);

    // animations: 'disabled' ends the update flash, which would otherwise tint whichever cards just changed.
    await page.screenshot({ path: path.join(OUT, 'dashboard.png'), fullPage: true, animations: 'disabled' });
    await page.screenshot({ path: path.join(OUT, 'dashboard-top.png'), animations: 'disabled' });
    await page.locator('#quality').screenshot({ path: path.join(OUT, 'dashboard-quality.png'), animations: 'disabled' });

    // The database goes away: the page says so, visibly, and comes back by itself.
    const port = db.server!.port;
    await db.server!.stop();
    await page.waitForSelector('#conn[data-state="db-down"]', { timeout: 10_000 });
    assert.equal(await page.isVisible('#banner'), true);
    assert.match(await text(page, '#banner'), /Database unavailable/);
    await page.screenshot({ path: path.join(OUT, 'dashboard-db-down.png') });
    server = await startEmbedded({ dataDir: db.server!.dataDir, port, user: 'sparkuser', password: 'sparkpass123', database: 'ecommerce_events' });
    await page.waitForSelector('#conn[data-state="live"]', { timeout: 15_000 });
    assert.equal(await page.isVisible('#banner'), false);
    assert.equal(await text(page, '#m-events'), '65');

    assert.deepEqual(problems, [], 'no script errors or CSP violations on the page');
  } finally {
    await browser.close();
    if (engine?.exitCode === null) {
      engine.kill('SIGINT');
      await new Promise((r) => engine.once('exit', r));
    }
    await dash.close();
    await server?.stop();
  }
});
