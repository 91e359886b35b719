/**
 * The Spark job's fast checks: its defaults are the deployment facts of src/config.ts, and its pure Python
 * parts pass their pytest suite. (That the contract JSON it reads is current: test/unit/contract-json.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { defaults } from '../../src/config.js';
import { PYTHON, ROOT, SPARK_DIR, describeRun, run, sparkMissing } from './support.js';

test('the job defaults are the deployment facts of src/config.ts', { skip: sparkMissing() }, async () => {
  const r = await run(PYTHON, [path.join(SPARK_DIR, 'streaming_job.py'), '--print-settings'], { ...process.env, DATABASE_URL: '' });
  assert.equal(r.code, 0, describeRun('--print-settings', r));
  const s = JSON.parse(r.stdout) as Record<string, unknown>;
  const { deployment, engine } = defaults(ROOT);
  assert.equal(s.trigger, `${deployment.sparkTriggerSeconds}s`);
  assert.equal(s.max_files_per_trigger, deployment.sparkMaxFilesPerTrigger);
  assert.equal(s.shuffle_partitions, deployment.shufflePartitions);
  assert.deepEqual([s.retry_initial_ms, s.retry_max_ms], [engine.retryInitialMillis, engine.retryMaxMillis], "the batches' backoff");
  assert.equal(s.startup_retry_seconds, engine.startupRetrySeconds);
  assert.equal(s.batch_retry_seconds, engine.batchRetrySeconds);
  assert.equal(path.resolve(ROOT, String(s.progress_file)), engine.progressFile);
  assert.notEqual(path.resolve(ROOT, String(s.checkpoint)), engine.checkpointDir, 'never the TypeScript engine checkpoint');
});

test('a wrong flag is refused with exit code 2 and names the flag', { skip: sparkMissing() }, async () => {
  const r = await run(PYTHON, [path.join(SPARK_DIR, 'streaming_job.py'), '--trigger', 'on-arrival'], { ...process.env, DATABASE_URL: 'postgresql://x/y' });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--trigger "on-arrival"/);
});

test('pytest: the pure parts of the job (rows, contract, settings)', { skip: sparkMissing() }, async () => {
  const r = await run(PYTHON, ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', path.join(SPARK_DIR, 'tests')], process.env);
  assert.equal(r.code, 0, describeRun('pytest', r));
  assert.match(r.stdout, /\d+ passed/);
});

test('install-spark.sh wrote the driver JVM class data sharing archive, and a local run would use it', { skip: sparkMissing() }, async () => {
  const archive = path.join(SPARK_DIR, '.venv', 'spark-driver.jsa');
  assert.ok(fs.statSync(archive, { throwIfNoEntry: false })?.size, `${archive} exists (scripts/install-spark.sh writes it; see spark/.venv/warmup.log)`);
  const code = 'from ecomstream_spark.job import driver_java_options; print(driver_java_options())';
  const env = { ...process.env, ECOMSTREAM_SPARK_JAVA_OPTIONS: undefined, PYTHONPATH: SPARK_DIR };
  const r = await run(PYTHON, ['-c', code], env);
  assert.equal(r.code, 0, describeRun('driver_java_options', r));
  assert.equal(r.stdout.trim(), `-XX:SharedArchiveFile=${archive} -XX:TieredStopAtLevel=1`);
});
