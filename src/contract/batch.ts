/**
 * Two batch-level rules both engines apply and the contract JSON carries to the Spark job (keys
 * `published` and `batchQuality`), so each is written once: which names in the landing folder are
 * published files, and a batch's quality score.
 */

/**
 * A published file: its name ends in `suffix` and is longer than it, and does not start with one of
 * `hiddenPrefixes`. The generator writes each file under a hidden temp name and renames it; Spark's
 * file source skips names starting with "." or "_", so the TypeScript engine skips the same ones.
 */
export const PUBLISHED = { suffix: '.csv', hiddenPrefixes: ['.', '_'] } as const;

export type Published = typeof PUBLISHED;

const SUFFIX = Buffer.from(PUBLISHED.suffix);
const HIDDEN = new Set(PUBLISHED.hiddenPrefixes.map((p) => p.charCodeAt(0)));

/** `name` as bytes or text (a name that is not UTF-8 is judged by its bytes). */
export function isPublished(name: Buffer | string): boolean {
  const b = typeof name === 'string' ? Buffer.from(name) : name;
  return b.length > SUFFIX.length && !HIDDEN.has(b[0]!) && b.subarray(b.length - SUFFIX.length).equals(SUFFIX);
}

/**
 * A batch's quality score: the mean of the quality scores of the rows it stored in the table (rows
 * rejected for any reason, PostgreSQL's refusals and later duplicates included, count in neither the
 * sum nor the number), rounded to `decimals` places as floor(x * 10^d + 0.5) / 10^d; null when the
 * batch stored no row.
 */
export const BATCH_QUALITY = { decimals: 3 } as const;

export type BatchQuality = typeof BATCH_QUALITY;

export function qualityScore(storedQualitySum: number, storedRows: number): number | null {
  if (storedRows <= 0) return null;
  const scale = 10 ** BATCH_QUALITY.decimals;
  return Math.floor((storedQualitySum / storedRows) * scale + 0.5) / scale;
}
