/** Named read queries: the spec's sample queries and the event_summary view. */
export interface NamedQuery {
  title: string;
  sql: string;
  /** What the figure means, printed under the table. */
  note?: string;
}

export const NAMED_QUERIES = {
  'events-by-type': {
    title: 'Event distribution',
    sql: 'SELECT event_type, COUNT(*)::bigint AS count FROM user_events GROUP BY event_type ORDER BY event_type',
  },
  'revenue-by-category': {
    title: 'Revenue by category',
    sql: `SELECT product_category, SUM(price) AS revenue FROM user_events WHERE event_type = 'purchase'
          GROUP BY product_category ORDER BY revenue DESC NULLS LAST`,
  },
  latency: {
    title: 'Processing latency (seconds from event to insert)',
    sql: 'SELECT ROUND(AVG(EXTRACT(EPOCH FROM (inserted_at - event_timestamp)))::numeric, 3) AS avg_latency_seconds, COUNT(*)::bigint AS events FROM user_events',
    note:
      'The average, over every row of user_events, of inserted_at (when the engine committed the row) minus\n' +
      'event_timestamp (when the event happened). The generator stamps each event at the moment it happens,\n' +
      'between its previous file and the file the event is written into, so the figure is the wait for the\n' +
      'file (on average half the interval between files) plus the time from publishing the file to committing\n' +
      'its batch (the progress records and the dashboard show that part alone).',
  },
  summary: {
    title: 'event_summary view',
    sql: 'SELECT event_type, event_date, event_count, unique_users, avg_price FROM event_summary ORDER BY event_date DESC, event_type',
  },
} as const satisfies Record<string, NamedQuery>;

export type QueryName = keyof typeof NAMED_QUERIES;
export const QUERY_NAMES = Object.keys(NAMED_QUERIES) as QueryName[];
