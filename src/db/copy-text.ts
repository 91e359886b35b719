/** PostgreSQL COPY text format: the escaping every COPY line in this project uses. */

/** Backslash, tab, newline and carriage return, escaped as COPY's text format reads them. */
export function copyEscape(s: string): string {
  return s.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
}
