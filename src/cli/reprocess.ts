/**
 * `ecomstream reprocess`: read files again on purpose (a fixed file, or after a bug fix) as one new batch
 * of the normal protocol. Rows already stored count as already present; the files' earlier reject rows
 * are replaced by the new outcome in the same transaction. A crash is replayed like any batch.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { loadConfig } from '../config.js';
import { selectReprocessFiles, type ReprocessSelection } from '../engine/reprocess.js';
import { ConfigError } from '../errors.js';
import { consoleLogger, numberOption } from './common.js';
import { withEngineSession } from './engine-session.js';

function isoTime(value: string): number {
  const ms = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(ms))
    throw new InvalidArgumentError(`--since takes an ISO-8601 time such as 2026-12-01T09:00:00Z, got ${JSON.stringify(value)}`);
  return ms;
}

export function register(program: Command): void {
  const d = loadConfig().engine;
  program
    .command('reprocess')
    .description('read files again on purpose as a new batch: stored rows count as already present, earlier rejects of the files are replaced')
    .option('--checkpoint <dir>', 'checkpoint folder of the stream (the engine on it must be stopped)', d.checkpointDir)
    .option('--input <dir>', 'folder the files are in', d.inputDir)
    .option('--file <names...>', 'file names inside --input')
    .option('--since <iso-time>', 'every published file in --input modified at or after this time', isoTime)
    .option('--progress-file <file>', 'progress records (JSON lines)', d.progressFile)
    .option(
      '--retry-timeout <seconds>',
      'how long the batch is retried while the database cannot take it before reprocess exits 1',
      numberOption('--retry-timeout', 0, 86_400),
      d.batchRetrySeconds,
    )
    .addHelpText('after', '\nGive --file or --since. Uses DATABASE_URL when set, else the embedded server in data/postgres.')
    .action(async (opts: { checkpoint: string; input: string; file?: string[]; since?: number; progressFile: string; retryTimeout: number }) => {
      if ((opts.file === undefined) === (opts.since === undefined)) {
        throw new ConfigError('reprocess needs exactly one of --file NAME… or --since ISO-TIME', {
          option: opts.file ? '--since' : '--file',
          code: 'BAD_OPTION',
        });
      }
      if (!fs.existsSync(path.join(opts.checkpoint, 'metadata'))) {
        throw new ConfigError(
          `${opts.checkpoint} holds no stream (no metadata file): reprocess reads files again within an existing stream; give its --checkpoint`,
          { option: '--checkpoint', file: opts.checkpoint, code: 'NO_STREAM' },
        );
      }
      const selection: ReprocessSelection = opts.file ? { files: opts.file } : { sinceMs: opts.since! };
      const files = await selectReprocessFiles(opts.input, selection);
      if (files.length === 0)
        throw new ConfigError(`no published file in ${opts.input} was modified since ${new Date(opts.since!).toISOString()}`, {
          option: '--since',
          code: 'NO_FILES',
        });
      const log = consoleLogger;
      const config = loadConfig({
        engine: {
          inputDir: opts.input,
          checkpointDir: opts.checkpoint,
          progressFile: opts.progressFile,
          trigger: { kind: 'once' },
          fileSettleMillis: 0,
          batchRetrySeconds: opts.retryTimeout,
        },
      });
      await withEngineSession(config, log, {}, async (session) => {
        log.info(`reprocessing ${files.length} file${files.length === 1 ? '' : 's'}: ${files.map((f) => f.name).join(', ')}`, {
          files: files.map((f) => f.name),
        });
        await session.runEngine({ reprocess: files });
      });
    });
}
