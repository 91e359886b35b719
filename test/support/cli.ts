/** The `ecomstream` CLI run as a subprocess, as a user runs it (pg-boss tests its CLI the same way). */
import { spawn, type SpawnOptions } from 'node:child_process';
import path from 'node:path';
import { PACKAGE_ROOT } from '../../src/db/migrate.js';

export const BIN = path.join(PACKAGE_ROOT, 'bin', 'ecomstream.js');

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function cli(args: string[], env: Record<string, string | undefined> = {}, options: Pick<SpawnOptions, 'cwd' | 'uid' | 'gid'> = {}): Promise<Run> {
  return new Promise((resolve) => {
    // No metrics endpoint unless a test asks for one: parallel runs would contend for its port.
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ECOMSTREAM_METRICS_PORT: '0', ...env }, ...options });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}
