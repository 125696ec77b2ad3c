#!/usr/bin/env node
// Installs the XO compatibility suite's own packages (test/xo) when they are missing or older than its lock, so that
// `npm test` works on a fresh clone with no step of its own. Usage: node scripts/ensure-xo-packages.mjs
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const project = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'test', 'xo');

function mtimeMs(file) {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
}

// npm writes node_modules/.package-lock.json at the end of every install: its age is the install's.
const installed = mtimeMs(path.join(project, 'node_modules', '.package-lock.json'));
const locked = mtimeMs(path.join(project, 'package-lock.json'));
const reason =
  installed === undefined ? 'not installed yet' : locked !== undefined && installed < locked ? 'lock changed' : null;
if (reason !== null) {
  console.log(`test/xo: installing Xen Orchestra's packages for the compatibility suite (${reason}): npm ci`);
  // --prefix, not cwd: npm passes its own prefix to scripts in the environment, and a child npm would inherit it.
  const result = spawnSync('npm', ['ci', '--prefix', project, '--no-audit', '--no-fund', '--loglevel=error'], {
    stdio: 'inherit',
  });
  process.exit(result.status ?? 1);
}
