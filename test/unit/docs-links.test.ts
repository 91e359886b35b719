/**
 * The documentation holds together: every relative link in README.md, docs/*.md and spark/README.md
 * names a file that exists, and every `#anchor` a heading of the page it points to (GitHub's heading
 * ids); and no paragraph or table row is written twice across those pages (each fact lives once, the
 * others link to it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const PAGES = [
  'README.md',
  'spark/README.md',
  ...fs
    .readdirSync(path.join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

const read = (rel: string): string => fs.readFileSync(path.join(ROOT, rel), 'utf8');

/** The page without fenced code blocks (a `# HELP` line in one is no heading, a `](` no link). */
function prose(text: string): string[] {
  let fenced = false;
  return text.split('\n').filter((line) => {
    if (/^\s*```/.test(line)) {
      fenced = !fenced;
      return false;
    }
    return !fenced;
  });
}

/** GitHub's id for a heading: lower case, punctuation dropped, each space a hyphen, repeats numbered. */
function anchors(rel: string): Set<string> {
  const ids = new Set<string>();
  for (const line of prose(read(rel))) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = m[1]!
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\p{M} _-]/gu, '')
      .replace(/ /g, '-');
    let id = base;
    for (let n = 1; ids.has(id); n++) id = `${base}-${n}`;
    ids.add(id);
  }
  return ids;
}

/** The link targets of a page's prose: `[text](target)` and `![alt](target)`, inline code left out. */
function links(rel: string): string[] {
  const text = prose(read(rel))
    .join('\n')
    .replace(/`[^`\n]*`/g, '');
  return [...text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1]!);
}

test('the documentation pages are the ones this test reads', () => {
  for (const page of ['README.md', 'spark/README.md', 'docs/architecture.md', 'docs/contracts.md', 'docs/reliability.md', 'docs/operations.md']) {
    assert.ok(PAGES.includes(page), page);
  }
});

test('every relative link in README.md, docs/*.md and spark/README.md resolves, anchors included', () => {
  const broken: string[] = [];
  for (const page of PAGES) {
    for (const target of links(page)) {
      if (/^[a-z]+:/i.test(target)) continue; // http(s), mailto: not this test's business
      const [file, anchor] = target.split('#') as [string, string | undefined];
      const resolved = file === '' ? page : path.posix.normalize(path.posix.join(path.posix.dirname(page), file));
      if (!fs.existsSync(path.join(ROOT, resolved))) broken.push(`${page}: ${target} (no file ${resolved})`);
      else if (anchor !== undefined && resolved.endsWith('.md') && !anchors(resolved).has(anchor)) {
        broken.push(`${page}: ${target} (no heading #${anchor} in ${resolved})`);
      }
    }
  }
  assert.deepEqual(broken, []);
});

/** Paragraphs (joined lines, spaces collapsed) and table rows long enough to state a fact. */
function statements(rel: string): string[] {
  const out: string[] = [];
  const paragraphs = prose(read(rel))
    .join('\n')
    .split(/\n\s*\n/);
  for (const p of paragraphs) {
    const rows = p.split('\n').filter((l) => l.startsWith('|'));
    if (rows.length > 0) out.push(...rows.filter((r) => r.length >= 60));
    else if (p.length >= 120 && !p.trimStart().startsWith('    ')) out.push(p.replace(/\s+/g, ' ').trim());
  }
  return out;
}

test('no paragraph or table row is written twice across README.md, docs/*.md and spark/README.md', () => {
  const seen = new Map<string, string>();
  const twice: string[] = [];
  for (const page of PAGES) {
    for (const s of statements(page)) {
      const first = seen.get(s);
      if (first !== undefined) twice.push(`${first} and ${page}: ${s.slice(0, 80)}…`);
      else seen.set(s, page);
    }
  }
  assert.deepEqual(twice, []);
});
