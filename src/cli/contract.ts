/** `ecomstream contract`: export the event contract as JSON for the Spark job. */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { EVENT_CONTRACT } from '../contract/event.js';
import { contractJson, type ContractSpec } from '../contract/schema.js';

/** The contract as the JSON both engines read (the event contract by default). */
export function renderContract(spec: ContractSpec = EVENT_CONTRACT): string {
  return `${JSON.stringify(contractJson(spec), null, 2)}\n`;
}

export function register(program: Command): void {
  program
    .command('contract')
    .description('write the event contract (columns, types, allowed values, reason codes) as JSON')
    .option('--out <file>', 'file to write; standard output when omitted')
    .action((opts: { out?: string }) => {
      const text = renderContract();
      if (!opts.out) return void process.stdout.write(text);
      fs.mkdirSync(path.dirname(path.resolve(opts.out)), { recursive: true });
      fs.writeFileSync(opts.out, text);
    });
}
