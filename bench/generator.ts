/**
 * Generator throughput: 100 files x 10,000 events, unpaced, into a temp folder; prints events/s (median of
 * 3 runs). Run: `node --import tsx bench/generator.ts [files] [eventsPerFile]`.
 * The figure includes building the text, fsync of every file and the link/unlink publish.
 */
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { defaults } from '../src/config.js';
import { runGenerator } from '../src/generator/run.js';

const files = Number(process.argv[2] ?? 100);
const eventsPerFile = Number(process.argv[3] ?? 10_000);
const runs: number[] = [];
for (let run = 1; run <= 3; run++) {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ecomstream-bench-gen-'));
  try {
    const config = { ...defaults().generator, files, eventsPerFile, intervalSeconds: 0, rate: 0, seed: run };
    const t0 = performance.now();
    const result = await runGenerator({ outDir: dir, config });
    const secs = (performance.now() - t0) / 1000;
    const listed = (await fsp.readdir(dir)).filter((n) => n.endsWith('.csv')).length;
    if (listed !== files || result.events !== files * eventsPerFile) throw new Error(`run ${run}: expected ${files} files, found ${listed}`);
    const rate = result.events / secs;
    runs.push(rate);
    console.log(
      `run ${run}: ${result.events.toLocaleString('en-US')} events in ${files} files, ${secs.toFixed(3)} s, ${Math.round(rate).toLocaleString('en-US')} events/s`,
    );
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}
runs.sort((a, b) => a - b);
console.log(`generator: ${Math.round(runs[1]!).toLocaleString('en-US')} events/s (median of 3; ${files} files x ${eventsPerFile} events, unpaced, fsync on)`);
