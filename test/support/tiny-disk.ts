/**
 * A real "PostgreSQL is out of disk space" (SQLSTATE 53100): a tablespace on a 1 MiB tmpfs, with
 * user_events moved into it, so a COPY or INSERT that extends the table fails with "could not extend
 * file ...: No space left on device" — and `grow()` gives it room again.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import type { TestContext } from 'node:test';
import type { EmbeddedServer } from '../../src/db/embedded.js';
import { query } from './pg.js';

export interface TinyDisk {
  dir: string;
  /** Gives the filesystem room again (256 MiB). */
  grow(): void;
}

/**
 * The tmpfs, owned by the server's user and unmounted after the test (lazily: the server may still hold
 * its files); or why there is none (mounting needs root and CAP_SYS_ADMIN; the server must run here).
 */
export function tinyDisk(t: TestContext, server: EmbeddedServer | undefined): TinyDisk | string {
  if (!server) return 'TEST_DATABASE_URL: the server is elsewhere, its tablespace cannot be put on a filesystem here';
  if (process.getuid?.() !== 0) return 'mounting a tiny tmpfs for a tablespace needs root';
  const dir = fs.mkdtempSync('/tmp/ecomstream-tiny-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    fs.rmdirSync(dir);
    return `cannot mount a tmpfs here: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`;
  }
  t.after(() => {
    execFileSync('umount', ['-l', dir]);
    fs.rmdirSync(dir);
  });
  const owner = fs.statSync(server.dataDir);
  fs.chownSync(dir, owner.uid, owner.gid);
  return { dir, grow: () => execFileSync('mount', ['-o', 'remount,size=256m', dir]) };
}

/** Moves user_events of the database at `url` onto `disk` (the server, removed after the test file, keeps the tablespace). */
export async function userEventsOn(disk: TinyDisk, url: string): Promise<void> {
  const space = `tiny_${process.pid}_${Date.now()}`;
  await query(url, `CREATE TABLESPACE ${space} LOCATION '${disk.dir}'`);
  await query(url, `ALTER TABLE user_events SET TABLESPACE ${space}`);
}
