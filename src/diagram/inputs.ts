/** Gathering the model's inputs from a project folder: the files a fresh clone has. */
import path from 'node:path';
import { defaults } from '../config.js';
import { listMigrations } from '../db/migrate.js';
import { loadCompose, parseBench, parseDockerfileBase, parseEngines, parseSchema, readOptionalText } from './facts.js';
import type { ModelInputs } from './model.js';

/** Used until generator.Dockerfile exists, and said so in the Technology Stack box. */
export const FALLBACK_GENERATOR_IMAGE = 'node:20-alpine';

export const INPUT_FILES = {
  compose: 'docker-compose.yml',
  /** The migrations, read in number order as one schema. */
  schema: 'postgres/migrations',
  bench: 'bench/results/latest.json',
  engines: 'bench/results/engines.json',
} as const;

/**
 * The committed diagrams show the defaults (`defaults()`), not this machine's environment: a
 * developer's ECOMSTREAM_PG_PORT must not make the committed files differ from a fresh regeneration.
 */
export function loadInputs(root: string): ModelInputs {
  const compose = loadCompose(path.join(root, INPUT_FILES.compose));
  const schemaFile = path.join(root, INPUT_FILES.schema);
  const benchFile = path.join(root, INPUT_FILES.bench);
  const benchText = readOptionalText(benchFile);
  const enginesText = readOptionalText(path.join(root, INPUT_FILES.engines));
  const dockerfile = compose.services.find((s) => s.key === 'generator')?.dockerfile;
  const dockerText = dockerfile ? readOptionalText(path.join(root, dockerfile)) : undefined;
  const base = dockerText ? parseDockerfileBase(dockerText) : undefined;
  return {
    config: defaults(root),
    root,
    compose,
    schema: parseSchema(
      listMigrations(schemaFile)
        .map((m) => m.sql)
        .join('\n'),
    ),
    bench: benchText === undefined ? undefined : parseBench(benchText, INPUT_FILES.bench),
    engines: enginesText === undefined ? undefined : parseEngines(enginesText, INPUT_FILES.engines),
    generatorImage: base && dockerfile ? { image: base, source: dockerfile } : { image: FALLBACK_GENERATOR_IMAGE, source: 'fallback' },
  };
}
