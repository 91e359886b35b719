/**
 * Conformance in Spark local mode (local[2]): see conformance-check.ts for what is compared; the same
 * check runs against a standalone cluster in cluster.test.ts.
 */
import { test } from 'node:test';
import fs from 'node:fs';
import path from 'node:path';
import { checkConformance } from './conformance-check.js';
import { ROOT, runSpark, sparkMissing } from './support.js';

const missing = sparkMissing() ?? (fs.existsSync(path.join(ROOT, 'dist', 'cli', 'main.js')) ? undefined : 'dist/ not built: run npx tsc -p .');

test('the TypeScript engine and the Spark job store the same rows and rejects', { skip: missing, timeout: 900_000 }, async () => {
  await checkConformance(runSpark);
});
