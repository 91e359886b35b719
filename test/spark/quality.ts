/**
 * The batch quality score over the rows a batch STORED (src/contract/batch.ts), as a fixture any engine's
 * test can feed: two files, one batch each, with rows PostgreSQL refuses and rows with empty optional
 * fields (so the weights differ), and per batch what must be stored and the score worked out by hand.
 *
 * The refusal is a BEFORE INSERT trigger that skips the marked rows (`REFUSE_ROWS_SQL`): PostgreSQL
 * stores them nowhere and raises no error. A CHECK constraint would refuse them with an error, which the
 * TypeScript engine isolates (rejected_by_database) but the Spark job does not handle (the contract's
 * engine.refusedByDatabase is typescriptOnly): its batch would fail.
 */
import { HEADER, row, type RowOverrides } from '../support/files.js';

/** user_id of the rows the trigger refuses. */
export const REFUSED_USER = 'REFUSED';

/** Run in the test's own database before the engine: user_events skips every row of REFUSED_USER. */
export const REFUSE_ROWS_SQL = `
  CREATE FUNCTION refuse_marked_rows() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF NEW.user_id = '${REFUSED_USER}' THEN RETURN NULL; END IF;
    RETURN NEW;
  END $$;
  CREATE TRIGGER refuse_marked_rows BEFORE INSERT ON user_events FOR EACH ROW EXECUTE FUNCTION refuse_marked_rows();`;

export interface QualityBatch {
  /** The file of this batch (one file per batch: run with one file per trigger). */
  name: string;
  content: string;
  /** The batch's expected stream_batches counts (rejected: contract rejects, duplicates not included). */
  input: number;
  inserted: number;
  duplicates: number;
  rejected: number;
  /** event_ids the batch stores. */
  stored: string[];
  /** The mean of the stored rows' quality weights, rounded to 3 places by hand. */
  quality: number;
}

function id(n: number): string {
  return `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
}

/** A valid row; `empty` optional columns left empty (qualityWeights [1, 0.9, 0.8]: 0, 1, 2 or more). */
function line(n: number, empty: string[], o: RowOverrides = {}): string {
  return row({ event_id: id(n), user_id: `U${n}`, ...Object.fromEntries(empty.map((c) => [c, ''])), ...o });
}

function file(lines: string[]): string {
  return `${HEADER}\n${lines.join('\n')}\n`;
}

/**
 * Batch 0 takes the fast path (no duplicate); batch 1 the whole-batch path (a row stored by batch 0
 * and a key twice in the batch), where the score was the mean over the de-duplicated staged rows.
 */
export function qualityBatches(): QualityBatch[] {
  const refused = { user_id: REFUSED_USER };
  return [
    {
      name: 'events_quality_1.csv',
      content: file([
        line(1, []), // 1.0
        line(2, ['product_name']), // 0.9
        line(3, ['price']), // 0.9
        line(4, [], refused), // 1.0, refused
        line(5, ['session_id', 'device_type'], refused), // 0.8, refused
        line(6, [], { event_type: 'teleport' }), // contract reject
      ]),
      input: 6,
      inserted: 3,
      duplicates: 0,
      rejected: 1,
      stored: [id(1), id(2), id(3)],
      quality: 0.933, // (1 + 0.9 + 0.9) / 3 = 0.9333…; with the refused rows it was 4.6 / 5 = 0.92
    },
    {
      name: 'events_quality_2.csv',
      content: file([
        line(1, ['product_name'], { user_id: 'U-again' }), // 0.9, stored by batch 0: a duplicate
        line(11, []), // 1.0
        line(12, ['price', 'session_id']), // 0.8
        line(13, [], refused), // 1.0, refused
        line(11, ['product_name', 'product_category', 'price']), // 0.8, repeats line 2: a duplicate
        line(14, ['product_category', 'device_type', 'session_id']), // 0.8
      ]),
      input: 6,
      inserted: 3,
      duplicates: 2,
      rejected: 0,
      stored: [id(11), id(12), id(14)],
      quality: 0.867, // (1 + 0.8 + 0.8) / 3 = 0.8666…; over the staged rows it was 4.5 / 5 = 0.9
    },
  ];
}
