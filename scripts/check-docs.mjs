#!/usr/bin/env node
// Fails when a Markdown table cell runs over 300 characters (the detail belongs in a section the table links to), or
// when a relative link names a file or an anchor that does not exist.
// Usage: node scripts/check-docs.mjs [rootDir]   (every *.md under rootDir, outside node_modules, dist, test, .git)
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const MAX_CELL = 300;
const SKIPPED_FOLDERS = new Set(['node_modules', 'dist', 'test', 'coverage', '.git']);

const rootDir = path.resolve(process.argv[2] ?? '.');

function* markdownFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!SKIPPED_FOLDERS.has(entry.name)) yield* markdownFiles(full);
    } else if (entry.name.endsWith('.md')) yield full;
  }
}

// Each line outside fenced code blocks, with its 1-based number.
function* proseLines(text) {
  let fence;
  for (const [index, line] of text.split('\n').entries()) {
    const marker = /^\s*(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence === undefined && marker !== undefined) fence = marker;
    else if (fence !== undefined && marker !== undefined && marker[0] === fence[0] && marker.length >= fence.length)
      fence = undefined;
    else if (fence === undefined) yield { line, number: index + 1 };
  }
}

// GitHub's heading ids: the rendered text in lower case, punctuation dropped, spaces as hyphens; repeats get -1, -2.
function slugOf(heading) {
  const rendered = heading.replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/[`*]/g, '');
  return rendered
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

const anchorCache = new Map();
function anchorsOf(file) {
  if (!anchorCache.has(file)) {
    const anchors = new Set();
    const seen = new Map();
    for (const { line } of proseLines(readFileSync(file, 'utf8'))) {
      const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1];
      if (heading !== undefined) {
        const slug = slugOf(heading);
        const count = seen.get(slug) ?? 0;
        seen.set(slug, count + 1);
        anchors.add(count === 0 ? slug : `${slug}-${count}`);
      }
      for (const match of line.matchAll(/<a\s[^>]*(?:id|name)="([^"]+)"/g)) anchors.add(match[1]);
    }
    anchorCache.set(file, anchors);
  }
  return anchorCache.get(file);
}

// A table row's cells: split on pipes not escaped with a backslash, the outer pipes dropped.
function cellsOf(row) {
  const cells = row.trim().split(/(?<!\\)\|/);
  return cells.slice(1, row.trim().endsWith('|') ? -1 : undefined).map((cell) => cell.trim());
}

function linkProblem(file, target) {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//')) return undefined; // http:, mailto:, ...
  const hash = target.indexOf('#');
  const filePart = hash === -1 ? target : target.slice(0, hash);
  const anchor = hash === -1 ? undefined : decodeURIComponent(target.slice(hash + 1));
  const resolved = filePart === '' ? file : path.resolve(path.dirname(file), decodeURIComponent(filePart));
  if (!existsSync(resolved)) return `links to ${target}: no such file`;
  if (anchor === undefined || anchor === '' || !resolved.endsWith('.md') || statSync(resolved).isDirectory())
    return undefined;
  if (!anchorsOf(resolved).has(anchor.toLowerCase()))
    return `links to ${target}: no heading or anchor "${anchor}" in ${path.relative(rootDir, resolved)}`;
  return undefined;
}

const problems = [];
let files = 0;
for (const file of markdownFiles(rootDir)) {
  files++;
  const where = (number) => `${path.relative(rootDir, file)}:${number}`;
  for (const { line, number } of proseLines(readFileSync(file, 'utf8'))) {
    if (line.trimStart().startsWith('|')) {
      for (const [index, cell] of cellsOf(line).entries()) {
        if (cell.length > MAX_CELL)
          problems.push(
            `${where(number)}: table cell ${index + 1} has ${cell.length} characters (at most ${MAX_CELL}): ` +
              `move the detail into a section and link to it ("${cell.slice(0, 60)}...")`,
          );
      }
    }
    // Links inside code spans are examples, not links.
    const prose = line.replace(/(`+)[^`]*?\1/g, (span) => ' '.repeat(span.length));
    for (const match of prose.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      const problem = linkProblem(file, match[1]);
      if (problem !== undefined) problems.push(`${where(number)}: ${problem}`);
    }
    const definition = /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/.exec(prose);
    if (definition !== null) {
      const problem = linkProblem(file, definition[1]);
      if (problem !== undefined) problems.push(`${where(number)}: ${problem}`);
    }
  }
}

if (problems.length > 0) {
  for (const problem of problems) console.error(problem);
  console.error(`${problems.length} problem(s) in the docs`);
  process.exit(1);
}
console.log(`docs: ${files} Markdown files, no table cell over ${MAX_CELL} characters, every relative link resolves`);
