/** `ecomstream contract`: export the event contract as JSON for the Spark job. */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { EVENT_CONTRACT } from '../contract/event.js';
import { tableDdl } from '../contract/ddl.js';
import { contractJson, loadContractFile, type ContractSpec } from '../contract/schema.js';

/** The contract as the JSON both engines read (the event contract by default). */
export function renderContract(spec: ContractSpec = EVENT_CONTRACT): string {
  return `${JSON.stringify(contractJson(spec), null, 2)}\n`;
}

export function register(program: Command): void {
  program
    .command('contract')
    .description("write the event contract (columns, types, checks, reason codes) as JSON, or a contract's table as SQL")
    .option('--out <file>', 'file to write; standard output when omitted')
    .option('--contract <file>', "another feed's contract JSON instead of the event contract")
    .option('--ddl', "write the CREATE TABLE statement of the contract's table instead of the JSON")
    .action((opts: { out?: string; contract?: string; ddl?: boolean }) => {
      const spec = opts.contract ? loadContractFile(opts.contract) : EVENT_CONTRACT;
      const text = opts.ddl ? tableDdl(spec) : renderContract(spec);
      if (!opts.out) return void process.stdout.write(text);
      fs.mkdirSync(path.dirname(path.resolve(opts.out)), { recursive: true });
      fs.writeFileSync(opts.out, text);
    });
}
