#!/usr/bin/env node
// Fails when the folders under src/ import each other in a cycle (house style: dependencies point one way).
// Usage: node scripts/check-folder-cycles.mjs [srcDir]
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const srcDir = path.resolve(process.argv[2] ?? 'src');
const importPattern = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]/g;

// A file's folder under src/; files at the top of src/ are their own node ("(root)/x.ts").
function folderOf(file) {
  const parts = path.relative(srcDir, file).split(path.sep);
  return parts.length === 1 ? `(root)/${parts[0]}` : parts[0];
}

function* sourceFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* sourceFiles(full);
    else if (/\.(ts|mts)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) yield full;
  }
}

const edges = new Map(); // folder -> Map(folder -> example "a.ts -> b.ts")
for (const file of sourceFiles(srcDir)) {
  const from = folderOf(file);
  for (const match of readFileSync(file, 'utf8').matchAll(importPattern)) {
    const target = path.resolve(path.dirname(file), match[1]);
    if (!target.startsWith(srcDir + path.sep)) continue;
    const to = folderOf(target.replace(/\.js$/, '.ts'));
    if (to === from) continue;
    if (!edges.has(from)) edges.set(from, new Map());
    const out = edges.get(from);
    if (!out.has(to)) out.set(to, `${path.relative(srcDir, file)} -> ${match[1]}`);
  }
}

// Tarjan's strongly connected components: every component of more than one folder is a cycle.
let counter = 0;
const order = new Map();
const low = new Map();
const stack = [];
const onStack = new Set();
const cycles = [];
function visit(node) {
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
  if (low.get(node) === order.get(node)) {
    const component = [];
    let member;
    do {
      member = stack.pop();
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    if (component.length > 1) cycles.push(component.sort());
  }
}
for (const node of edges.keys()) if (!order.has(node)) visit(node);

if (cycles.length === 0) {
  console.log(
    `no import cycles between the ${new Set([...edges.keys()]).size} folders of ${path.relative('.', srcDir) || '.'}`,
  );
  process.exit(0);
}
for (const component of cycles) {
  console.error(`import cycle between folders: ${component.join(', ')}`);
  for (const from of component)
    for (const [to, example] of edges.get(from) ?? [])
      if (component.includes(to)) console.error(`  ${from} -> ${to} (${example})`);
}
console.error('make the dependency point one way: move the shared piece to the lower folder, or pass it in');
process.exit(1);
