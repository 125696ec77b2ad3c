#!/usr/bin/env node
// Fails when src/ breaks the structure docs/architecture.md states (house style: dependencies point one way):
// - an import cycle between folders, or between files (inside a folder too);
// - an import against the layers ("## Layers" in docs/architecture.md): a folder imports only lower layers;
// - a file over 300 lines or a function over 60 lines, unless allowed below with a reason.
// Each failure names the files and imports to change.
// Usage: node scripts/check-folder-cycles.mjs [srcDir] [--layers file.md]
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const MAX_FILE_LINES = 300;
const MAX_FUNCTION_LINES = 60;

// Over the limits for now, each with why (paths relative to srcDir; a function as "file:name").
const ALLOWED_SIZE = new Map([]);
// File cycles kept for now, each with why (the files of the cycle, sorted, joined by ", ").
const ALLOWED_CYCLES = new Map([]);
// Imports against the layers kept for now, each with why ("from -> to" as files relative to srcDir).
const ALLOWED_IMPORTS = new Map([]);

const args = process.argv.slice(2);
const layersAt = args.indexOf('--layers');
const layersFile = path.resolve(layersAt === -1 ? 'docs/architecture.md' : args[layersAt + 1]);
const srcDir = path.resolve(
  args.find((a, i) => !a.startsWith('--') && (layersAt === -1 || i !== layersAt + 1)) ?? 'src',
);
const importPattern = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]/g;
const problems = [];

// A file's folder under src/; files at the top of src/ are the folder "(root)".
function folderOf(file) {
  const parts = path.relative(srcDir, file).split(path.sep);
  return parts.length === 1 ? '(root)' : parts[0];
}

function* sourceFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* sourceFiles(full);
    else if (/\.(ts|mts)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) yield full;
  }
}

// The layers, highest first: the lines of the ```layers block of the architecture doc, each a list of folders.
function readLayers(file) {
  const block = /```layers\n([\s\S]*?)```/.exec(readFileSync(file, 'utf8'))?.[1];
  if (block === undefined) throw new Error(`${file} has no \`\`\`layers block`);
  const rank = new Map();
  block
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter(Boolean)
    .forEach((line, index) => line.split(/\s+/).forEach((folder) => rank.set(folder, index)));
  return rank;
}

// Tarjan's strongly connected components of a graph (Map node -> Map next -> example): those of more than one node.
function cycles(edges) {
  let counter = 0;
  const order = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const found = [];
  const visit = (node) => {
    order.set(node, counter);
    low.set(node, counter++);
    stack.push(node);
    onStack.add(node);
    for (const next of edges.get(node)?.keys() ?? []) {
      if (!order.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node), low.get(next)));
      } else if (onStack.has(next)) low.set(node, Math.min(low.get(node), order.get(next)));
    }
    if (low.get(node) !== order.get(node)) return;
    const component = [];
    let member;
    do {
      member = stack.pop();
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    if (component.length > 1) found.push(component.sort());
  };
  for (const node of edges.keys()) if (!order.has(node)) visit(node);
  return found;
}

function addEdge(edges, from, to, example) {
  if (!edges.has(from)) edges.set(from, new Map());
  if (!edges.get(from).has(to)) edges.get(from).set(to, example);
}

function reportCycles(edges, what) {
  for (const component of cycles(edges)) {
    if (ALLOWED_CYCLES.has(component.join(', '))) continue;
    const lines = [`import cycle between ${what}: ${component.join(', ')}`];
    for (const from of component)
      for (const [to, example] of edges.get(from) ?? [])
        if (component.includes(to)) lines.push(`  ${from} -> ${to}${example === '' ? '' : ` (${example})`}`);
    problems.push(lines.join('\n'));
  }
}

// Functions (declarations, methods, arrows, expressions) longer than the limit, by name.
function longFunctions(file, text) {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found = [];
  const visit = (node) => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body !== undefined) {
      const start = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
      const end = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      const named = node.name ?? (ts.isVariableDeclaration(node.parent) ? node.parent.name : undefined);
      if (end - start + 1 > MAX_FUNCTION_LINES)
        found.push({ name: named?.getText(source) ?? `(anonymous at line ${start + 1})`, lines: end - start + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

const layers = readLayers(layersFile);
const folderEdges = new Map();
const fileEdges = new Map();
for (const file of sourceFiles(srcDir)) {
  const from = folderOf(file);
  const relative = path.relative(srcDir, file);
  const text = readFileSync(file, 'utf8');
  const lineCount = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
  if (lineCount > MAX_FILE_LINES && !ALLOWED_SIZE.has(relative))
    problems.push(`${relative} has ${lineCount} lines, more than ${MAX_FILE_LINES}: split it by concern`);
  for (const { name, lines } of longFunctions(file, text))
    if (!ALLOWED_SIZE.has(`${relative}:${name}`))
      problems.push(`${relative}: ${name} has ${lines} lines, more than ${MAX_FUNCTION_LINES}: split it`);
  if (!layers.has(from)) problems.push(`${from}/ is in no layer of ${path.relative('.', layersFile)}: add it`);
  fileEdges.set(relative, fileEdges.get(relative) ?? new Map());
  for (const match of text.matchAll(importPattern)) {
    const target = path.resolve(path.dirname(file), match[1].replace(/\.js$/, '.ts'));
    if (!target.startsWith(srcDir + path.sep)) continue;
    const to = folderOf(target);
    const targetRelative = path.relative(srcDir, target);
    addEdge(fileEdges, relative, targetRelative, '');
    if (to === from) continue;
    addEdge(folderEdges, from, to, `${relative} -> ${match[1]}`);
    const allowed = ALLOWED_IMPORTS.has(`${relative} -> ${targetRelative}`);
    if (!allowed && layers.has(from) && layers.has(to) && layers.get(to) <= layers.get(from))
      problems.push(
        `${relative} imports ${match[1]}: ${to}/ is ${layers.get(to) === layers.get(from) ? 'in the same layer as' : 'above'} ` +
          `${from}/ (${path.relative('.', layersFile)}, "Layers"): move the shared piece down a layer, or pass it in`,
      );
  }
}
reportCycles(folderEdges, 'folders');
reportCycles(fileEdges, 'files');

if (problems.length === 0) {
  console.log(
    `no import cycles between the ${layers.size} folders of ${path.relative('.', srcDir) || '.'} or their files, ` +
      `no import against their layers, no file over ${MAX_FILE_LINES} lines or function over ${MAX_FUNCTION_LINES}`,
  );
  process.exit(0);
}
for (const problem of problems) console.error(problem);
console.error('make the dependency point one way: move the shared piece to the lower folder, or pass it in');
process.exit(1);
