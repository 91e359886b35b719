/**
 * `npm run spark:local -- [job flags]`: the Spark job in Spark local mode against the project's PostgreSQL —
 * DATABASE_URL when set, else the embedded server in data/postgres (the one `npm start` uses; started
 * here if it is not running, and stopped again at the end). For users with Java and PySpark but no Docker.
 *
 * Defaults: input data/input, checkpoint data/checkpoints/spark (beside, never inside, the TypeScript
 * engine's logs in data/checkpoints: the two engines' logs are not interchangeable), progress
 * data/logs/progress.jsonl,
 * trigger 10 s. Any flag of spark/streaming_job.py overrides them (`npm run spark:local -- --help`).
 *
 * Ctrl-C reaches the Spark driver, which finishes the batch in flight and stops; a second Ctrl-C aborts.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config.js';
import { openDatabase } from '../src/db/connect.js';
import { consoleLogger } from '../src/cli/common.js';

const SPARK_DIR = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(SPARK_DIR);
const PYTHON = process.env.ECOMSTREAM_SPARK_PYTHON ?? path.join(SPARK_DIR, '.venv', 'bin', 'python');

async function main(): Promise<number> {
  const userArgs = process.argv.slice(2);
  if (!fs.existsSync(PYTHON)) {
    consoleLogger.error(`no Python environment for Spark at ${path.relative(ROOT, PYTHON)}: run scripts/install-spark.sh first`);
    return 1;
  }
  const help = userArgs.includes('--help') || userArgs.includes('-h') || userArgs.includes('--print-settings');
  const config = loadConfig({}, ROOT);
  const has = (flag: string): boolean => userArgs.some((a) => a === flag || a.startsWith(`${flag}=`));
  const defaults: string[] = [];
  if (!has('--input')) defaults.push('--input', config.engine.inputDir);
  if (!has('--checkpoint')) defaults.push('--checkpoint', path.join(ROOT, 'data', 'checkpoints', 'spark'));
  if (!has('--progress-file')) defaults.push('--progress-file', config.engine.progressFile);

  const db = help ? undefined : await openDatabase(config, consoleLogger);
  try {
    const child = spawn(PYTHON, [path.join(SPARK_DIR, 'streaming_job.py'), ...defaults, ...userArgs], {
      stdio: 'inherit',
      // The driver UI on (http://localhost:4040): its /metrics/prometheus is the job's scrape target.
      env: { ECOMSTREAM_SPARK_UI: 'true', ...process.env, ...(db ? { DATABASE_URL: db.url } : {}) },
    });
    // The terminal's Ctrl-C reaches the driver too (same process group): it decides how to stop. This
    // process only waits for it, so the embedded server is stopped after the driver is gone.
    const forward = (signal: NodeJS.Signals) => () => {
      if (signal !== 'SIGINT') child.kill(signal);
    };
    process.on('SIGINT', forward('SIGINT'));
    process.on('SIGTERM', forward('SIGTERM'));
    return await new Promise<number>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + 9 : 1)));
    });
  } finally {
    await db?.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    consoleLogger.error(`spark:local: ${(err as Error).message}`);
    process.exit(1);
  },
);
