import { execFileSync } from 'node:child_process';
import { lstatSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';

const created: string[] = [];
const stoppers: (() => Promise<void>)[] = [];

// Every temp folder made here is unlocked (chattr -R -i) and removed after each test, even when the test failed.
// Whatever could still lock (a running daemon) is stopped first, so nothing re-locks behind the cleanup.
afterEach(async () => {
  for (const stop of stoppers.splice(0).reverse()) await stop().catch(() => undefined);
  const failures: unknown[] = [];
  for (const folder of created.splice(0)) await removeLocked(folder).catch((error: unknown) => failures.push(error));
  if (failures.length > 0) throw new AggregateError(failures, 'could not remove every temp folder');
});

export function stopBeforeCleanup(stop: () => Promise<void>): void {
  stoppers.push(stop);
}

export async function removeLocked(folder: string): Promise<void> {
  try {
    execFileSync('chattr', ['-R', '-i', '--', folder], { stdio: 'ignore' });
  } catch {
    // chattr exits non-zero on symlinks and vanished files; what it could unlock is unlocked.
  }
  await rm(folder, { recursive: true, force: true });
}

export async function tempFolder(prefix = 'xo-immutable-test-'): Promise<string> {
  const folder = await mkdtemp(path.join(os.tmpdir(), prefix));
  created.push(folder);
  return folder;
}

export interface TestRemote {
  base: string;
  root: string;
  indexPath: string;
}

export async function tempRemote(): Promise<TestRemote> {
  const base = await tempFolder();
  const root = path.join(base, 'remote');
  await mkdir(root);
  return { base, root, indexPath: path.join(base, 'index') };
}

// The config file an admin would write for a test remote (one remote "r", 7 days unless told), as a command-line
// test passes it.
export async function writeConfigFile(remote: TestRemote, immutabilityDuration = '7d'): Promise<string> {
  const file = path.join(remote.base, 'config.json');
  const config = { indexPath: remote.indexPath, remotes: { r: { root: remote.root, immutabilityDuration } } };
  await writeFile(file, JSON.stringify(config));
  return file;
}

// A folder there now (not a link, not missing: the daemon settles a link in two renames, the name free between them).
export function isFolder(file: string): boolean {
  return lstatSync(file, { throwIfNoEntry: false })?.isDirectory() === true;
}

export function isImmutable(file: string): boolean {
  const out = execFileSync('lsattr', ['-d', '--', file], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
  return out.slice(0, out.indexOf(' ')).includes('i');
}

// Polls until the check passes: waiting for the daemon, not asserting how fast it is (the benchmark measures that).
// `what` can be a function, called at the timeout, to say what was still missing then.
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  what: string | (() => string),
  timeoutMs = 10_000,
): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs)
      throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export function allImmutable(paths: readonly string[]): boolean {
  return paths.every((p) => isImmutable(p));
}

// The paths that carry +i, from one lsattr call (for polling many files).
// Every file and folder below `folder` (what a directory unit's lock must reach).
export async function filesBelow(folder: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(folder, { withFileTypes: true, recursive: true }))
    found.push(path.join(entry.parentPath, entry.name));
  return found;
}

export function immutableAmong(files: readonly string[]): string[] {
  if (files.length === 0) return [];
  const out = execFileSync('lsattr', ['-d', '--', ...files], {
    encoding: 'utf8',
    env: { ...process.env, LC_ALL: 'C' },
  });
  return out
    .split('\n')
    .filter((line) => line.slice(0, line.indexOf(' ')).includes('i'))
    .map((line) => line.slice(line.indexOf(' ') + 1));
}
