/**
 * PostgreSQL COPY text format, both ways. In that format a field may not hold a raw backslash, tab,
 * newline or carriage return (the server refuses the whole COPY: 22P04 "literal carriage return found
 * in data"), so every one of the four is escaped, whatever the column.
 */
const SPECIAL = /[\\\t\n\r]/;
const SPECIAL_ALL = /[\\\t\n\r]/g;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** One field, escaped; the value is returned as it is when it needs no escaping (the common case). */
export function copyEscape(s: string): string {
  return SPECIAL.test(s) ? s.replace(SPECIAL_ALL, (c) => ESCAPES[c]!) : s;
}

const UNESCAPES: Record<string, string> = { '\\': '\\', t: '\t', n: '\n', r: '\r', N: '' };

/** The inverse of `copyEscape` for one field (`\N`, NULL, reads as null). */
export function copyUnescape(s: string): string | null {
  if (s === '\\N') return null;
  return s.includes('\\') ? s.replace(/\\(.)/g, (_, c: string) => UNESCAPES[c] ?? c) : s;
}
