/**
 * The batch's reject buffer: rejected rows and file notices, kept in memory as COPY lines of
 * rejected_events until they pass 32 MiB, then spilled to a temporary file, so a file of a million bad
 * lines does not take the engine's memory. Written with one COPY before the batch record.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import type pg from 'pg';
import type { RejectRecord } from '../contract/records.js';
import { COPY_REJECTS, SOURCE_FILE_CHARS } from '../db/ledger.js';
import { copyEscape, copyInto } from './copy.js';

const SPILL_BYTES = 32 << 20;

export class RejectBuffer {
  private lines: string[] = [];
  private bytes = 0;
  private spillFile: string | undefined;
  private spill: fs.WriteStream | undefined;
  count = 0;
  readonly byReason = new Map<string, number>();

  constructor(
    private readonly streamId: string,
    private readonly batchId: number,
  ) {}

  add(r: RejectRecord): void {
    this.byReason.set(r.reason, (this.byReason.get(r.reason) ?? 0) + 1);
    const line = `${this.streamId}\t${this.batchId}\t${copyEscape(r.file.slice(0, SOURCE_FILE_CHARS))}\t${r.line}\t${r.raw === null ? '\\N' : copyEscape(r.raw)}\t${r.reason}\t${copyEscape(r.detail)}\n`;
    this.count++;
    this.bytes += line.length;
    this.lines.push(line);
    if (this.bytes > SPILL_BYTES) {
      if (!this.spill) {
        this.spillFile = path.join(os.tmpdir(), `ecomstream-rejects-${process.pid}-${this.batchId}-${Date.now()}`);
        this.spill = fs.createWriteStream(this.spillFile);
      }
      this.spill.write(this.lines.join(''));
      this.lines = [];
      this.bytes = 0;
    }
  }

  /** COPYs every buffered reject into rejected_events. */
  async copyTo(client: pg.PoolClient): Promise<void> {
    if (this.count === 0) return;
    await copyInto(client, COPY_REJECTS, async (write) => {
      if (this.spill && this.spillFile) {
        this.spill.end();
        await once(this.spill, 'finish');
        for await (const chunk of fs.createReadStream(this.spillFile, { highWaterMark: 1 << 20 })) await write(chunk as Buffer);
      }
      for (let i = 0; i < this.lines.length; i += 4096) await write(this.lines.slice(i, i + 4096).join(''));
    });
  }

  async dispose(): Promise<void> {
    this.spill?.destroy();
    if (this.spillFile) await fsp.rm(this.spillFile, { force: true });
  }
}
