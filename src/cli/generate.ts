/** `ecomstream generate`: write CSV event files into the landing folder (spec section 2). */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Option, type Command } from 'commander';
import { loadConfig } from '../config.js';
import { randomSeed } from '../generator/prng.js';
import { removeTempFilesSync } from '../generator/publish.js';
import { runGenerator, type PublishedFile } from '../generator/run.js';
import { consoleLogger, intOption, numberOption } from './common.js';

interface GenerateFlags {
  out: string;
  files: number;
  eventsPerFile: number;
  interval: number;
  seed?: number;
  invalidRate: number;
  rate: number;
}

function display(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : p;
}

export function register(program: Command): void {
  const { generator: g, engine } = loadConfig();
  program
    .command('generate')
    .description('write CSV files of e-commerce events into a folder, each published atomically as events_YYYYMMDD_HHMMSS_N.csv')
    .addOption(new Option('--out <dir>', 'folder to publish into (created if missing)').default(engine.inputDir, display(engine.inputDir)))
    .addOption(new Option('--files <n>', 'number of files, 0 = until Ctrl-C').argParser(intOption('--files', 0)).default(g.files))
    .addOption(new Option('--events-per-file <n>', 'events per file').argParser(intOption('--events-per-file', 1, 10_000_000)).default(g.eventsPerFile))
    .addOption(
      new Option('--interval <seconds>', 'seconds between files (first file at once)')
        .argParser(numberOption('--interval', 0, 86_400))
        .default(g.intervalSeconds),
    )
    .addOption(new Option('--seed <n>', 'seed for reproducible content (default: random, printed)').argParser(intOption('--seed', 0)))
    .addOption(
      new Option('--invalid-rate <r>', 'share of rows replaced by bad rows of every kind the engine rejects')
        .argParser(numberOption('--invalid-rate', 0, 1))
        .default(g.invalidRate),
    )
    .addOption(
      new Option('--rate <events-per-s>', 'pace by events per second instead of --interval (0 = not paced)')
        .argParser(numberOption('--rate', 0, 100_000_000))
        .default(g.rate),
    )
    .action((flags: GenerateFlags) => generate(flags, g.seed));
}

async function generate(flags: GenerateFlags, configSeed: number | undefined): Promise<void> {
  const seed = flags.seed ?? configSeed ?? randomSeed();
  const config = loadConfig({
    generator: {
      files: flags.files,
      eventsPerFile: flags.eventsPerFile,
      intervalSeconds: flags.interval,
      seed,
      invalidRate: flags.invalidRate,
      rate: flags.rate,
    },
  }).generator;
  const outDir = path.resolve(flags.out);
  const pacing = config.rate > 0 ? `${config.rate} events/s` : config.intervalSeconds > 0 ? `every ${config.intervalSeconds}s` : 'unpaced';
  consoleLogger.info(
    `generating ${config.files === 0 ? 'unlimited' : config.files} files of ${config.eventsPerFile} events into ${display(outDir)} (${pacing}, seed ${seed}${config.invalidRate > 0 ? `, invalid rate ${config.invalidRate}` : ''})`,
  );

  const controller = new AbortController();
  const onSigint = interruptHandler(controller);
  process.on('SIGINT', onSigint);
  const tty = process.stdout.isTTY;
  const started = performance.now();
  try {
    const result = await runGenerator({ outDir, config, signal: controller.signal, onFile: progress(config.files, tty, started) });
    if (tty && result.files > 0) process.stdout.write('\n');
    const secs = (performance.now() - started) / 1000;
    consoleLogger.info(
      `${controller.signal.aborted ? 'stopped: ' : ''}wrote ${result.files} files, ${result.events} events in ${secs.toFixed(1)}s into ${display(outDir)}`,
    );
  } finally {
    process.off('SIGINT', onSigint);
  }
}

/** First Ctrl-C: finish the file in flight and stop. Second: leave now, but take the temp file of a file in flight with us. */
function interruptHandler(controller: AbortController): () => void {
  let interrupts = 0;
  return () => {
    interrupts++;
    if (interrupts === 1) {
      controller.abort();
      return;
    }
    removeTempFilesSync();
    process.exit(130);
  };
}

/** A line per file, or on a terminal one line rewritten in place. */
function progress(files: number, tty: boolean, started: number): (f: PublishedFile) => void {
  let events = 0;
  return (f) => {
    events += f.events;
    if (!tty) {
      consoleLogger.info(`published ${f.name} (${f.events} events)`);
      return;
    }
    const secs = (performance.now() - started) / 1000;
    const rate = secs > 0 ? Math.round(events / secs) : 0;
    const total = files === 0 ? '' : `/${files}`;
    process.stdout.write(`\r\x1b[Kfiles ${f.index}${total}  events ${events}  ${rate.toLocaleString('en-US')} events/s  last ${f.name}`);
  };
}
