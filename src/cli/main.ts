/**
 * `ecomstream` entry point. One file per subcommand, each exporting `register(program)`; this file only
 * wires them up and turns any failure into a one-line reason and a non-zero exit code.
 */
import { Command, CommanderError, Option } from 'commander';
import { loadConfig, LOG_FORMATS, type LogFormat } from '../config.js';
import { consoleLogger, logFormat, setLogFormat } from './log.js';
import { register as registerUp } from './up.js';
import { register as registerGenerate } from './generate.js';
import { register as registerProcess } from './process.js';
import { register as registerQuery } from './query.js';
import { register as registerContract } from './contract.js';
import { register as registerMigrate } from './migrate.js';
import { register as registerDiagram } from './diagram.js';
import { register as registerDashboard } from './dashboard.js';
import { register as registerCheckpoint } from './checkpoint.js';
import { register as registerReprocess } from './reprocess.js';

export function buildProgram(): Command {
  const program = new Command('ecomstream')
    .description('Real-time e-commerce event pipeline: generator -> landing folder -> exactly-once engine -> PostgreSQL')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerUp(program);
  registerGenerate(program);
  registerProcess(program);
  registerQuery(program);
  registerContract(program);
  registerMigrate(program);
  registerDiagram(program);
  registerDashboard(program);
  registerCheckpoint(program);
  registerReprocess(program);
  const logFormat = loadConfig().ops.logFormat;
  const leaves = (c: Command): Command[] => (c.commands.length ? c.commands.flatMap(leaves) : [c]);
  for (const cmd of program.commands) cmd.exitOverride();
  for (const cmd of program.commands.flatMap(leaves)) {
    cmd.exitOverride();
    cmd.addOption(new Option('--log-format <format>', 'console lines: text (readable) or json (one object per line)').choices(LOG_FORMATS).default(logFormat));
  }
  program.hook('preAction', (_program, action) => setLogFormat(action.opts<{ logFormat?: LogFormat }>().logFormat ?? logFormat));
  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    // Built inside the try: the subcommands read the config (and so the environment) for their defaults.
    const program = buildProgram();
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; usage errors were already printed by commander.
      process.exitCode = err.exitCode;
      return;
    }
    const e = err as Error;
    if (logFormat() === 'json') {
      consoleLogger.error(e.message, { error: e.name, code: (e as { code?: unknown }).code, cause: e.cause instanceof Error ? e.cause.message : e.cause });
      process.exitCode = 1;
      return;
    }
    // A cause without a message shows as String() makes it, whatever it is.
    // eslint-disable-next-line @typescript-eslint/no-base-to-string
    process.stderr.write(`ecomstream: ${e.message}${e.cause ? ` (cause: ${String((e.cause as { message?: unknown }).message ?? e.cause)})` : ''}\n`);
    if (process.env.ECOMSTREAM_DEBUG) process.stderr.write(`${e.stack}\n`);
    process.exitCode = 1;
  }
}
