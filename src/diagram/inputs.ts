/** Gathering the model's inputs from a project folder: the files a fresh clone has. */
import path from 'node:path';
import { defaults, type Config } from '../config.js';
import { listMigrations } from '../db/migrate.js';
import {
  loadCompose,
  parseBench,
  parseDockerfileBase,
  parseEngines,
  parseSchema,
  readOptionalText,
  SERVICE_KEYS,
  type BenchResults,
  type ComposeFacts,
  type EnginesResults,
  type SchemaFacts,
} from './facts.js';

/** Everything the diagrams show, read; the model is a pure function of it. */
export interface ModelInputs {
  /** The typed configuration; the committed diagrams use `defaults(root)`. */
  config: Config;
  /** The project folder the config's absolute paths are relative to (shown as `./data/...`). */
  root: string;
  compose: ComposeFacts;
  schema: SchemaFacts;
  /** The TypeScript engine's benchmark results, when `bench/results/latest.json` exists. */
  bench?: BenchResults | undefined;
  /** Both engines side by side, when `bench/results/engines.json` exists (the Spark job's figures). */
  engines?: EnginesResults | undefined;
  /** The generator's base image and where it came from. */
  generatorImage: { image: string; source: string };
}

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
  const dockerfile = compose.services.find((s) => s.key === SERVICE_KEYS.generator)?.dockerfile;
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
