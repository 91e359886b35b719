/**
 * Both evaluators of a contract behind one interface, for the tests that compare them: the TypeScript
 * reader (src/engine/read-batch.ts readBatch, its rows encoded by the sink's CopyEncoder in the staging layout) and the Spark job's (spark/ecomstream_spark/rows.py, run by
 * spark/tests/scan_cli.py with the machine's python3: no Spark, no virtualenv, standard library only).
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FileEntry } from '../../src/checkpoint/checkpoint.js';
import { readBatch } from '../../src/engine/read-batch.js';
import { CopyEncoder, copyUnescape } from '../../src/sink/copy.js';
import { compileContract, EVENTS } from '../../src/engine/validate.js';
import { loadContractFile } from '../../src/contract/schema.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** ECOMSTREAM_PYTHON picks another interpreter; the default is the one on PATH. */
export const PYTHON3 = process.env.ECOMSTREAM_PYTHON ?? 'python3';

export interface Verdict {
  batch: number;
  file: string;
  line: number;
  reason: string | null;
  detail: string | null;
  raw: string | null;
  values: (string | null)[] | null;
}

export interface BatchSummary {
  validRows: number;
  qualitySum: number;
}

export interface Batch {
  dir: string;
  files: FileEntry[];
  batchTimestampMs: number;
}

/** Why python3 cannot run the evaluator here, or undefined. CI must have it. */
export function pythonMissing(): string | undefined {
  const r = spawnSync(PYTHON3, ['-c', 'import sys; sys.exit(0 if sys.version_info >= (3, 8) else 1)'], { stdio: 'ignore' });
  const why = r.status === 0 ? undefined : `no Python >= 3.8 as ${PYTHON3} (set ECOMSTREAM_PYTHON)`;
  if (why && process.env.CI) throw new Error(why);
  return why;
}

export async function runTypescript(batches: readonly Batch[], contractFile?: string): Promise<{ verdicts: Verdict[]; summaries: BatchSummary[] }> {
  const contract = contractFile ? compileContract(loadContractFile(contractFile)) : EVENTS;
  const ncol = contract.columnNames.length;
  const verdicts: Verdict[] = [];
  const summaries: BatchSummary[] = [];
  for (const [b, batch] of batches.entries()) {
    const staged = new CopyEncoder(true, (lines) => {
      for (const l of lines) {
        // The staging line: the contract's columns, then the row's quality, file, line number, raw line.
        const cols = l.slice(0, -1).split('\t');
        verdicts.push({
          batch: b,
          file: copyUnescape(cols[ncol + 1]!)!,
          line: Number(cols[ncol + 2]),
          reason: null,
          detail: null,
          raw: copyUnescape(cols[ncol + 3]!),
          values: cols.slice(0, ncol).map(copyUnescape),
        });
      }
    });
    const stats = await readBatch({ inputDir: batch.dir, files: batch.files, contract, rules: { batchTimestampMs: batch.batchTimestampMs } }, staged, (r) => {
      verdicts.push({ batch: b, file: r.file, line: r.line, reason: r.reason, detail: r.detail, raw: r.raw, values: null });
    });
    summaries.push({ validRows: stats.validRows, qualitySum: stats.qualitySum });
  }
  return { verdicts, summaries };
}

export function runPython(batches: readonly Batch[], contractFile?: string): Promise<{ verdicts: Verdict[]; summaries: BatchSummary[] }> {
  const input = JSON.stringify({
    contract: contractFile ?? null,
    batches: batches.map((b) => ({ files: b.files.map((f) => path.join(b.dir, f.name)), batchTimestampMs: b.batchTimestampMs })),
  });
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON3, [path.join(ROOT, 'spark', 'tests', 'scan_cli.py')], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`scan_cli.py exited ${code}: ${err}`));
      const verdicts: Verdict[] = [];
      const summaries: BatchSummary[] = [];
      for (const l of out.split('\n')) {
        if (!l) continue;
        const rec = JSON.parse(l) as Verdict & { summary?: boolean; validRows: number; qualitySum: number };
        if (rec.summary) summaries[rec.batch] = { validRows: rec.validRows, qualitySum: rec.qualitySum };
        else verdicts.push(rec);
      }
      resolve({ verdicts, summaries });
    });
    child.stdin.end(input);
  });
}

/** Writes the files and returns them as planned entries (the reader checks size and mtime against them). */
export function writeFiles(dir: string, files: readonly { name: string; content: Buffer }[]): FileEntry[] {
  fs.mkdirSync(dir, { recursive: true });
  return files.map((f) => {
    const file = path.join(dir, f.name);
    fs.writeFileSync(file, f.content);
    return { name: f.name, size: f.content.length, mtimeMs: fs.statSync(file).mtimeMs };
  });
}
