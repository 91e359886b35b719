/** The model's lines of text: how a box, legend or note line is made, wrapped, and how figures read. */
import type { Line, LineKind } from './model.js';

export const line = (text: string, kind: LineKind, align: Line['align'] = kind === 'note' ? 'left' : 'center'): Line => ({ text, kind, align });
export const bullet = (text: string): Line => line(`• ${text}`, 'note');

/** Words of `text` as lines of at most `width` characters. */
export function wrapWords(text: string, width: number): string[] {
  const out: string[] = [];
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const last = out[out.length - 1];
    if (last !== undefined && last.length + 1 + word.length <= width) out[out.length - 1] = `${last} ${word}`;
    else out.push(word);
  }
  return out;
}

export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function fmtMs(n: number): string {
  return n >= 10 ? `${fmtInt(n)} ms` : `${n.toFixed(1)} ms`;
}

/** `~500ms`: a figure the spec quotes, not one measured here. */
export function approxMs(n: number): string {
  return `~${fmtInt(n)}ms`;
}
