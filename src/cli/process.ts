/** `ecomstream process`: run the stream engine on a folder until stopped (or once / available-now). */
import type { Command } from 'commander';
import { loadConfig, parseTrigger, formatTrigger, type CleanSource, type TriggerSpec } from '../config.js';
import { openDatabase } from '../db/connect.js';
import { StreamEngine } from '../engine/stream.js';
import { compileContract } from '../engine/validate.js';
import { loadContractFile } from '../contract/schema.js';
import { formatProgress } from '../engine/progress.js';
import { choiceOption, consoleLogger, intOption } from './common.js';
import { InvalidArgumentError } from 'commander';
import { gracefulStop } from './signals.js';

const CLEAN: readonly CleanSource[] = ['off', 'archive', 'delete'];

function triggerOption(value: string): TriggerSpec {
  try {
    return parseTrigger(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

export function register(program: Command): void {
  const d = loadConfig().engine;
  program
    .command('process')
    .description('run the exactly-once stream engine: published CSV files in --input -> PostgreSQL')
    .option('--input <dir>', 'landing folder to watch', d.inputDir)
    .option('--checkpoint <dir>', 'checkpoint folder (offsets, commits, seen files)', d.checkpointDir)
    .option('--trigger <trigger>', 'available-now | once | on-arrival | <N>s', triggerOption, d.trigger)
    .option('--max-files-per-trigger <n>', 'files per batch at most (0 = no limit; the spec used 1)', intOption('--max-files-per-trigger', 0), d.maxFilesPerTrigger)
    .option('--clean-source <mode>', 'after commit: off | archive | delete', choiceOption('--clean-source', CLEAN), d.cleanSource)
    .option('--archive-dir <dir>', 'where --clean-source archive moves files', d.archiveDir)
    .option('--progress-file <file>', 'progress records (JSON lines)', d.progressFile)
    .option('--contract <file>', 'the feed\'s contract JSON (default: the event contract; see docs/contracts.md)')
    .addHelpText('after', `\nDefault trigger: ${formatTrigger(d.trigger)}. Uses DATABASE_URL when set, else the embedded server in data/postgres.`)
    .action(async (opts: { input: string; checkpoint: string; trigger: TriggerSpec; maxFilesPerTrigger: number; cleanSource: CleanSource; archiveDir: string; progressFile: string; contract?: string }) => {
      const contract = opts.contract ? compileContract(loadContractFile(opts.contract)) : undefined;
      const config = loadConfig({
        engine: {
          inputDir: opts.input,
          checkpointDir: opts.checkpoint,
          trigger: opts.trigger,
          maxFilesPerTrigger: opts.maxFilesPerTrigger,
          cleanSource: opts.cleanSource,
          archiveDir: opts.archiveDir,
          progressFile: opts.progressFile,
        },
      });
      const log = consoleLogger;
      const db = await openDatabase(config, log);
      const stop = gracefulStop(log, 'finishing the batch in flight');
      try {
        const engine = new StreamEngine({ engine: config.engine, databaseUrl: db.url, log, signal: stop.signal, contract, onProgress: (p) => log.info(formatProgress(p)) });
        const s = await engine.run();
        const peakMb = Math.round(process.resourceUsage().maxRSS / 1024);
        log.info(`stopped after ${s.batches} batches: ${s.inputRows} rows, ${s.insertedRows} inserted, ${s.duplicateRows} duplicate, ${s.rejectedRows} rejected (peak memory ${peakMb} MB)`);
      } finally {
        stop.release();
        await db.close();
      }
    });
}
