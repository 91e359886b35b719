/** `ecomstream checkpoint inspect|verify`: look inside a checkpoint folder, and check it against PostgreSQL. */
import type { Command } from 'commander';
import { loadConfig } from '../config.js';
import { withConnection } from '../db/client.js';
import { openDatabase } from '../db/connect.js';
import { recordedBatches } from '../db/ledger.js';
import { inspectCheckpoint, type CheckpointReport, type LogSummary } from '../checkpoint/inspect.js';
import { describeHolder } from '../checkpoint/lock.js';
import { verifyCheckpoint, type VerifyResult } from '../checkpoint/verify.js';
import { EcomstreamError } from '../errors.js';
import { consoleLogger } from './common.js';

function logLine(name: string, l: LogSummary): string {
  const range = l.oldest === null ? 'empty' : `batches ${l.oldest}..${l.newest}`;
  return `    ${name.padEnd(8)} ${String(l.entries).padStart(6)} entries, ${formatBytes(l.bytes).padStart(9)}  (${range})`;
}

function formatBytes(n: number): string {
  return n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(1)} MiB`;
}

export function formatReport(r: CheckpointReport): string {
  const lock = r.lock.state === 'held' ? `held (${describeHolder(r.lock)})` : r.lock.state === 'none' ? 'free' : 'not kept (Spark checkpoint)';
  const replay = r.pendingReplay ? `batch ${r.pendingReplay.batchId} (${r.pendingReplay.files.join(', ') || 'files unknown'})` : 'none';
  return [
    `checkpoint ${r.dir} (${r.engine} engine)`,
    `  stream id        ${r.streamId ?? '(no metadata)'}${r.createdAt ? `, created ${r.createdAt}` : ''}`,
    `  last planned     ${r.lastPlannedBatch ?? 'none'}`,
    `  last committed   ${r.lastCommittedBatch ?? 'none'}`,
    `  pending replay   ${replay}`,
    `  files seen       ${r.filesSeen}`,
    `  last compaction  ${r.lastCompaction ? `batch ${r.lastCompaction.batchId} at ${r.lastCompaction.at}` : 'none yet'}`,
    `  lock             ${lock}`,
    '  logs',
    logLine('offsets', r.logs.offsets),
    logLine('commits', r.logs.commits),
    logLine('sources', r.logs.sources),
  ].join('\n');
}

export class CheckpointMismatchError extends EcomstreamError {}

/** `checkpoint verify`'s two halves joined: the checkpoint's files, and the batches the ledger recorded. */
export function verifyAgainstDatabase(dir: string, databaseUrl: string): Promise<VerifyResult> {
  return verifyCheckpoint(dir, (streamId) => withConnection(databaseUrl, 'command', (client) => recordedBatches(client, streamId)));
}

export function register(program: Command): void {
  const d = loadConfig().engine;
  const cmd = program.command('checkpoint').description('look inside a checkpoint folder (inspect) or check it against PostgreSQL (verify)');
  cmd
    .command('inspect')
    .description(
      'stream id, last planned and committed batch, pending replay, files seen, log sizes, compaction, lock holder (read-only; also reads a Spark checkpoint)',
    )
    .option('--checkpoint <dir>', 'checkpoint folder', d.checkpointDir)
    .option('--json', 'print JSON instead of text')
    .action(async (opts: { checkpoint: string; json?: boolean }) => {
      const r = await inspectCheckpoint(opts.checkpoint);
      process.stdout.write(opts.json ? `${JSON.stringify(r, null, 2)}\n` : `${formatReport(r)}\n`);
    });
  cmd
    .command('verify')
    .description('cross-check the checkpoint with stream_batches; exits 1 naming each mismatch')
    .option('--checkpoint <dir>', 'checkpoint folder', d.checkpointDir)
    .addHelpText('after', '\nUses DATABASE_URL when set, else the embedded server in data/postgres.')
    .action(async (opts: { checkpoint: string }) => {
      const log = consoleLogger;
      const config = loadConfig();
      const db = await openDatabase(config, log, { migrate: false });
      try {
        const v = await verifyAgainstDatabase(opts.checkpoint, db.url);
        for (const n of v.notes) log.info(`note: ${n}`, { note: n });
        for (const m of v.mismatches) log.error(`mismatch: ${m}`, { mismatch: m });
        if (v.mismatches.length) {
          throw new CheckpointMismatchError(
            `${v.mismatches.length} mismatch${v.mismatches.length === 1 ? '' : 'es'} between ${opts.checkpoint} and stream_batches`,
            { code: 'CHECKPOINT_MISMATCH', file: opts.checkpoint },
          );
        }
        log.info(`ok: ${opts.checkpoint} agrees with stream_batches (stream ${v.report.streamId}, ${v.checked} batches checked)`, {
          streamId: v.report.streamId,
          checked: v.checked,
        });
      } finally {
        await db.close();
      }
    });
}
