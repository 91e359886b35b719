/** The contract's own checks: a contract the evaluators could not execute is refused by code, naming the fault. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { EVENT_CONTRACT } from '../../src/contract/event.js';
import { checkContract, contractJson, ContractError, loadContractFile, type ContractSpec } from '../../src/contract/schema.js';
import { tempDir } from '../support/files.js';

const refused = (spec: ContractSpec, what: RegExp): void => {
  assert.throws(
    () => checkContract(spec, 'x.json'),
    (e: unknown) => e instanceof ContractError && e.code === 'CONTRACT_INVALID' && what.test(e.message),
  );
};

test('the event contract passes its own checks', () => {
  assert.equal(checkContract(EVENT_CONTRACT, 'event'), EVENT_CONTRACT);
});

test('faults an evaluator could not execute are refused', () => {
  refused({ ...EVENT_CONTRACT, conflictKey: 'nope' }, /conflict key nope is not a column/);
  refused({ ...EVENT_CONTRACT, checks: EVENT_CONTRACT.checks.slice(1) }, /first check must be column_count/);
  refused(
    { ...EVENT_CONTRACT, checks: [...EVENT_CONTRACT.checks, { check: 'allowed', column: 'user_id', reason: 'missing_required', detail: '' }] },
    /lists no allowed values/,
  );
  refused(
    { ...EVENT_CONTRACT, checks: [...EVENT_CONTRACT.checks, { check: 'decimal', column: 'user_id', reason: 'invalid_price', detail: '' }] },
    /needs a decimal column/,
  );
  refused(
    { ...EVENT_CONTRACT, checks: EVENT_CONTRACT.checks.map((c) => ({ ...c, reason: c.check === 'required' ? 'no_such_reason' : c.reason })) },
    /reason no_such_reason is used but not listed/,
  );
  refused({ ...EVENT_CONTRACT, table: 'User Events' }, /not a lower-case SQL name/);
});

test('templates read only when a line or a file fails are required up front', () => {
  const c = EVENT_CONTRACT;
  const { unterminated_quote: _, ...split } = c.reader.malformed.detailSplit;
  refused(
    { ...c, reader: { ...c.reader, malformed: { ...c.reader.malformed, detailSplit: split as never } } },
    /detailSplit has no unterminated_quote template/,
  );
  const { dangling_link: __, ...skip } = c.engine.fileSkipped.detail;
  refused(
    { ...c, engine: { ...c.engine, fileSkipped: { ...c.engine.fileSkipped, detail: skip as never } } },
    /fileSkipped.detail has no dangling_link template/,
  );
  refused(
    { ...c, engine: { ...c.engine, refusedByDatabase: { reason: 'no_such_reason', typescriptOnly: true, detail: '' } } },
    /reason no_such_reason is used/,
  );
  const { typescriptOnly: ___, ...unflagged } = c.engine.fileModified;
  refused({ ...c, engine: { ...c.engine, fileModified: unflagged as never } }, /engine.fileModified needs typescriptOnly/);
});

test('a contract file whose semantics differ from what the engine implements is refused, naming the option', async () => {
  const dir = await tempDir();
  const file = path.join(dir, 'c.json');
  fs.writeFileSync(file, JSON.stringify({ ...contractJson(EVENT_CONTRACT), timestampPattern: '^.*$' }));
  assert.throws(
    () => loadContractFile(file),
    (e: unknown) => e instanceof ContractError && e.option === 'timestampPattern' && e.file === file,
  );
  fs.writeFileSync(file, JSON.stringify({ ...contractJson(EVENT_CONTRACT), splitFailures: ['unterminated_quote'] }));
  assert.throws(
    () => loadContractFile(file),
    (e: unknown) => e instanceof ContractError && e.option === 'splitFailures' && e.file === file,
  );
  fs.writeFileSync(file, JSON.stringify({ ...contractJson(EVENT_CONTRACT), retryableSqlstates: { classes: ['08', '23'], codes: [] } }));
  assert.throws(
    () => loadContractFile(file),
    (e: unknown) => e instanceof ContractError && e.option === 'retryableSqlstates' && e.file === file,
  );
  const fencing = contractJson(EVENT_CONTRACT).fencing;
  fs.writeFileSync(file, JSON.stringify({ ...contractJson(EVENT_CONTRACT), fencing: { ...fencing, batchNamePrefix: 'other ' } }));
  assert.throws(
    () => loadContractFile(file),
    (e: unknown) => e instanceof ContractError && e.option === 'fencing' && e.file === file,
  );
  fs.writeFileSync(file, JSON.stringify({ ...contractJson(EVENT_CONTRACT), version: 1 }));
  assert.throws(
    () => loadContractFile(file),
    (e: unknown) => e instanceof ContractError && e.message.includes('version 1'),
  );
  fs.writeFileSync(file, JSON.stringify(contractJson(EVENT_CONTRACT)));
  assert.equal(loadContractFile(file).table, 'user_events');
});

test('the fencing statements the Spark job runs under JDBC use each $n once, in order (it turns them into ?)', () => {
  for (const [name, sql] of Object.entries(contractJson(EVENT_CONTRACT).fencing.sql)) {
    const numbers = [...sql.matchAll(/\$(\d+)/g)].map((m) => Number(m[1]));
    assert.deepEqual(
      numbers,
      numbers.map((_, i) => i + 1),
      name,
    );
  }
});
