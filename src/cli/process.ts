/** `ecomstream process`: run the stream engine on a folder until stopped (or once / available-now). */
import type { Command } from 'commander';
import { loadConfig, parseTrigger, formatTrigger, type CleanSource, type TriggerSpec } from '../config.js';
import { compileContract } from '../engine/validate.js';
import { loadContractFile } from '../contract/schema.js';
import { addOpsOptions, opsOverrides, type OpsFlags } from './ops-options.js';
import { choiceOption, consoleLogger, intOption, numberOption, peakRssBytes } from './common.js';
import { InvalidArgumentError } from 'commander';
import { withEngineSession } from './engine-session.js';

const CLEAN: readonly CleanSource[] = ['off', 'archive', 'delete'];

function triggerOption(value: string): TriggerSpec {
  try {
    return parseTrigger(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

export function register(program: Command): void {
  const all = loadConfig();
  const d = all.engine;
  const cmd = program
    .command('process')
    .description('run the exactly-once stream engine: published CSV files in --input -> PostgreSQL')
    .option('--input <dir>', 'landing folder to watch', d.inputDir)
    .option('--checkpoint <dir>', 'checkpoint folder (offsets, commits, seen files)', d.checkpointDir)
    .option('--trigger <trigger>', 'available-now | once | on-arrival | <N>s', triggerOption, d.trigger)
    .option(
      '--max-files-per-trigger <n>',
      'files per batch at most (0 = no limit; the spec used 1)',
      intOption('--max-files-per-trigger', 0),
      d.maxFilesPerTrigger,
    )
    .option('--clean-source <mode>', 'after commit: off | archive | delete', choiceOption('--clean-source', CLEAN), d.cleanSource)
    .option('--archive-dir <dir>', 'where --clean-source archive moves files', d.archiveDir)
    .option('--progress-file <file>', 'progress records (JSON lines)', d.progressFile)
    .option(
      '--file-settle <seconds>',
      'plan a file only when unchanged this long (0 for producers that publish atomically)',
      numberOption('--file-settle', 0, 3600),
      d.fileSettleMillis / 1000,
    )
    .option('--reread-modified', 'read a processed file again, as a new version, when it changed under the same name', d.rereadModified)
    .option(
      '--startup-timeout <seconds>',
      'how long start-up waits for a PostgreSQL that does not answer yet',
      numberOption('--startup-timeout', 0, 86_400),
      d.startupRetrySeconds,
    )
    .option(
      '--retry-timeout <seconds>',
      'available-now and once: how long a batch the database cannot take is retried before the run exits 1 (a stream that runs on retries for as long as it runs)',
      numberOption('--retry-timeout', 0, 86_400),
      d.batchRetrySeconds,
    )
    .option('--new-stream', 'start a new stream although the database already holds batches of these files (they are read again)', d.newStream)
    .option('--contract <file>', "the feed's contract JSON (default: the event contract; see docs/contracts.md)");
  addOpsOptions(cmd, all.ops)
    .addHelpText('after', `\nDefault trigger: ${formatTrigger(d.trigger)}. Uses DATABASE_URL when set, else the embedded server in data/postgres.`)
    .action(
      async (
        opts: OpsFlags & {
          input: string;
          checkpoint: string;
          trigger: TriggerSpec;
          maxFilesPerTrigger: number;
          cleanSource: CleanSource;
          archiveDir: string;
          progressFile: string;
          fileSettle: number;
          rereadModified: boolean;
          newStream: boolean;
          startupTimeout: number;
          retryTimeout: number;
          contract?: string;
        },
      ) => {
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
            fileSettleMillis: Math.round(opts.fileSettle * 1000),
            rereadModified: opts.rereadModified,
            newStream: opts.newStream,
            startupRetrySeconds: opts.startupTimeout,
            batchRetrySeconds: opts.retryTimeout,
          },
          ops: opsOverrides(opts),
        });
        const log = consoleLogger;
        const s = await withEngineSession(config, log, { stopping: 'finishing the batch in flight', ops: true }, (session) => session.runEngine({ contract }));
        const peakMb = Math.round(peakRssBytes() / 2 ** 20);
        log.info(
          `stopped after ${s.batches} batches: ${s.inputRows} rows, ${s.insertedRows} inserted, ${s.duplicateRows} duplicate, ${s.rejectedRows} rejected (peak memory ${peakMb} MB)`,
        );
      },
    );
}
