/**
 * Golden vectors through both evaluators of a contract: the TypeScript engine's reader and the Spark
 * job's (rows.py, with the machine's python3, no Spark). test/fixtures/contract/vectors.json pins the event
 * contract; orders-vectors.json the second feed (orders.json), read from its file like `--contract`.
 * Each vector pins one edge of one check or semantic: raw bytes in, stored values or reason, detail and
 * line out. A failure names the vector and the evaluator.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileContract, EVENTS, type CompiledContract } from '../../src/engine/validate.js';
import { loadContractFile } from '../../src/contract/schema.js';
import { pythonMissing, runPython, runTypescript, writeFiles, type Batch, type BatchSummary, type Verdict } from '../support/evaluators.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'contract');

type Part = string | { hex: string };
interface Expected {
  line?: number;
  reason?: string;
  detail?: string;
  stored?: Record<string, string | null>;
  raw?: string;
  quality?: number;
}
interface Vector {
  name: string;
  row?: Record<string, string>;
  line?: string;
  file?: Part[];
  expect: Expected | Expected[];
}
interface Fixture {
  /** A contract file next to the fixture; the event contract when absent. */
  contract?: string;
  batchTimestamp: string;
  base: Record<string, string>;
  baseStored: Record<string, string>;
  vectors: Vector[];
}

const quoteCsv = (v: string): string => (/[",]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);

function content(v: Vector, fixture: Fixture, contract: CompiledContract): Buffer {
  if (v.file) return Buffer.concat(v.file.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p.hex, 'hex'))));
  const line = v.line ?? contract.columnNames.map((n) => quoteCsv(v.row![n] ?? fixture.base[n]!)).join(',');
  return Buffer.from(`${contract.header}\n${line}\n`, 'utf8');
}

function expected(v: Vector): Expected[] {
  return (Array.isArray(v.expect) ? v.expect : [v.expect]).map((e) => ({ line: 2, ...e }));
}

/** What one evaluator said about one vector, in the shape of the fixture's expectations. */
function compare(v: Vector, fixture: Fixture, names: readonly string[], got: Verdict[], summary: BatchSummary | undefined, who: string): string[] {
  const want = expected(v);
  const baseStored = names.map((n) => (n in fixture.baseStored ? fixture.baseStored[n]! : fixture.base[n]!));
  const wantShape = want.map((e) => ({
    line: e.line,
    reason: e.reason ?? null,
    detail: e.detail ?? null,
    values: e.stored ? names.map((n, i) => (n in e.stored! ? e.stored![n]! : baseStored[i]!)) : null,
    ...(e.raw !== undefined ? { raw: e.raw } : {}),
  }));
  got = [...got].sort((a, b) => a.line - b.line);
  const gotShape = got.map((g, i) => ({
    line: g.line,
    reason: g.reason,
    detail: g.detail,
    values: g.values,
    ...(want[i]?.raw !== undefined ? { raw: g.raw } : {}),
  }));
  const faults: string[] = [];
  try {
    assert.deepEqual(gotShape, wantShape);
  } catch {
    faults.push(`${who}: ${v.name}\n    got:  ${JSON.stringify(gotShape)}\n    want: ${JSON.stringify(wantShape)}`);
  }
  const qualities = want.filter((e) => e.quality !== undefined);
  if (qualities.length > 0) {
    const sum = qualities.reduce((s, e) => s + e.quality!, 0);
    if (!summary || Math.abs(summary.qualitySum - sum) > 1e-9) faults.push(`${who}: ${v.name}: quality sum ${summary?.qualitySum}, want ${sum}`);
  }
  return faults;
}

for (const fixtureFile of ['vectors.json', 'orders-vectors.json']) {
  const fixture = JSON.parse(fs.readFileSync(path.join(FIXTURES, fixtureFile), 'utf8')) as Fixture;
  const contractFile = fixture.contract ? path.join(FIXTURES, fixture.contract) : undefined;
  const contract = contractFile ? compileContract(loadContractFile(contractFile)) : EVENTS;

  test(
    `golden vectors (${fixtureFile}): the TypeScript and the Python evaluator give the fixture outcome for every vector`,
    { skip: pythonMissing() },
    async () => {
      const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'ecomstream-vectors-'));
      try {
        const now = Date.parse(fixture.batchTimestamp);
        const batches: Batch[] = fixture.vectors.map((v, i) => {
          const dir = path.join(root, String(i));
          return { dir, batchTimestampMs: now, files: writeFiles(dir, [{ name: 'v.csv', content: content(v, fixture, contract) }]) };
        });
        const [ts, py] = await Promise.all([runTypescript(batches, contractFile), runPython(batches, contractFile)]);
        const faults: string[] = [];
        for (const [i, v] of fixture.vectors.entries()) {
          faults.push(
            ...compare(
              v,
              fixture,
              contract.columnNames,
              ts.verdicts.filter((r) => r.batch === i),
              ts.summaries[i],
              'typescript',
            ),
          );
          faults.push(
            ...compare(
              v,
              fixture,
              contract.columnNames,
              py.verdicts.filter((r) => r.batch === i),
              py.summaries[i],
              'python',
            ),
          );
        }
        assert.deepEqual(faults, [], `${faults.length} vector outcomes differ:\n${faults.join('\n')}`);
      } finally {
        await fsp.rm(root, { recursive: true, force: true });
      }
    },
  );
}

test('golden vectors cover every check kind and every reason of the event contract', () => {
  const fixture = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'vectors.json'), 'utf8')) as Fixture;
  const reasons = new Set(fixture.vectors.flatMap((v) => expected(v).map((e) => e.reason ?? 'stored')));
  // Not a matter of bytes: a file that vanishes or cannot be read, and what the contract marks
  // typescriptOnly (a changed or special file, a row PostgreSQL refuses), which rows.py cannot give.
  const { reader, engine } = EVENTS.spec;
  const typescriptOnly = (Object.values(engine) as { reason: string; typescriptOnly: boolean }[]).flatMap((e) => (e.typescriptOnly ? [e.reason] : []));
  const fileOnly = new Set([reader.fileMissing.reason, reader.fileUnreadable.reason, ...typescriptOnly]);
  for (const r of Object.keys(EVENTS.spec.reasons)) if (!fileOnly.has(r)) assert.ok(reasons.has(r), `no vector gives ${r}`);
  for (const c of EVENTS.spec.checks)
    assert.ok(
      fixture.vectors.some((v) => v.name.startsWith(`${c.check}:`)),
      `no vector named for check ${c.check}`,
    );
});
