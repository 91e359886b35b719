/** RFC 4180 writing: a field is quoted only when it must be (`,`, `"`, CR or LF), quotes are doubled. */

const NEEDS_QUOTES = /[",\r\n]/;

export function csvField(value: string): string {
  return NEEDS_QUOTES.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** One record without its line break. */
export function csvRecord(fields: readonly string[]): string {
  let out = '';
  for (let i = 0; i < fields.length; i++) out += (i === 0 ? '' : ',') + csvField(fields[i]!);
  return out;
}
