/**
 * spark/event_contract.json, the contract the Spark job reads, is the current export of src/contract/
 * (`npm run contract` writes it): a contract changed without re-exporting fails here, in `npm test`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderContract } from '../../src/cli/contract.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

test('spark/event_contract.json is the current export of src/contract/', () => {
  const committed = fs.readFileSync(path.join(ROOT, 'spark', 'event_contract.json'), 'utf8');
  assert.equal(committed, renderContract(), 'stale: run `npm run contract` (node bin/ecomstream.js contract --out spark/event_contract.json)');
});
