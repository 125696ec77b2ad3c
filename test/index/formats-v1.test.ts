import { lstatSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { hash } from 'node:crypto';
import { cp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readClockState } from '../../src/clockguard/state.js';
import { parseEntry, type IndexEntry } from '../../src/index/entry.js';
import { checkIndexFormat } from '../../src/index/format.js';
import { UnitWindows } from '../../src/index/windows.js';
import { ProvenBackups } from '../../src/protect/proven.js';
import { identityOf } from '../../src/remote/identity.js';
import { DAY, startDaemon } from '../support/daemon.js';
import { isImmutable, tempFolder } from '../support/remote.js';

// Written by the daemon before formats were versioned (commit e952056) (test/fixtures/formats-v1/generate.mjs) for a remote at WRITTEN_AT/remote, the path its
// entries name: every file as that release left it. Later releases read them; nobody rewrites them.
const FIXTURE = path.resolve('test/fixtures/formats-v1');
const WRITTEN_AT = '/tmp/xo-immutable-formats-v1';
const BIN = path.resolve('bin/xo-immutable-backups.js');

// A copy of the fixture in a folder of this run (two suites on one machine never share it), removed after each test.
interface Copy {
  base: string;
  root: string;
  index: string;
  entries: IndexEntry[];
}

async function fixtureEntries(indexPath: string): Promise<{ file: string; text: string }[]> {
  const found: { file: string; text: string }[] = [];
  for (const day of await readdir(path.join(indexPath, 'main')))
    for (const name of await readdir(path.join(indexPath, 'main', day))) {
      const file = path.join(indexPath, 'main', day, name);
      found.push({ file, text: await readFile(file, 'utf8') });
    }
  return found;
}

function windowName(identity: { ino: string; birthtimeNs?: string }): string {
  return hash('sha256', `${identity.ino}:${identity.birthtimeNs ?? '0'}`, 'hex');
}

// The remote and index as that daemon left them, on this machine: the units locked again (git keeps no attribute); the
// paths below WRITTEN_AT, and the entry names made of them (sha256 of the path), those of the copy; the inode numbers
// and times in the entries, and the .windows/ names made of them, those of the copies. Only those machine-bound values
// change; every file keeps the shape it was written in.
async function restoreFixture(): Promise<Copy> {
  const base = await tempFolder('xo-immutable-formats-v1-');
  const root = path.join(base, 'remote');
  const index = path.join(base, 'index');
  await cp(path.join(FIXTURE, 'remote'), root, { recursive: true });
  await cp(path.join(FIXTURE, 'index'), index, { recursive: true });
  for (const name of await readdir(index, { recursive: true })) {
    const file = path.join(index, name);
    if (!(await stat(file)).isFile()) continue;
    const text = await readFile(file, 'utf8');
    if (text.includes(`${WRITTEN_AT}/`)) await writeFile(file, text.replaceAll(`${WRITTEN_AT}/`, `${base}/`));
  }
  const entries: IndexEntry[] = [];
  const renames = new Map<string, string>();
  for (const { file, text } of await fixtureEntries(index)) {
    const entry = parseEntry(text)!;
    const flags = entry.recursive ? ['-R', '+i'] : ['+i'];
    expect(spawnSync('chattr', [...flags, '--', entry.path]).status, entry.path).toBe(0);
    const identity = identityOf(lstatSync(entry.path, { bigint: true }));
    renames.set(windowName(entry.identity!), windowName(identity));
    const restored = { ...entry, identity };
    await rm(file);
    await writeFile(path.join(path.dirname(file), hash('sha256', entry.path, 'hex')), `${JSON.stringify(restored)}\n`);
    entries.push(restored);
  }
  // The daemon locked immutability.json too; lift refuses a root without it (an unmounted remote).
  expect(spawnSync('chattr', ['+i', path.join(root, 'immutability.json')]).status).toBe(0);
  const windows = path.join(index, '.windows', 'main');
  for (const name of await readdir(windows))
    await rename(path.join(windows, name), path.join(windows, renames.get(name)!));
  return { base, root, index, entries };
}

async function writeConfig({ base, root, index }: Copy): Promise<string> {
  const file = path.join(base, 'config.json');
  await writeFile(file, JSON.stringify({ indexPath: index, remotes: { main: { root, immutabilityDuration: '7d' } } }));
  return file;
}

// Each call starts node: on a loaded machine the tests that make several take longer than the default timeout.
function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
}

describe('on-disk formats written before versions (version 1)', () => {
  it('reads every file that daemon wrote: entries, .windows/ records, proven state, clock state, no format.json', async () => {
    const index = path.join(FIXTURE, 'index');
    await checkIndexFormat(index);
    const entries = (await fixtureEntries(index)).map(({ text }) => parseEntry(text));
    expect(entries).toHaveLength(10);
    for (const entry of entries) expect(entry).toMatchObject({ version: 1, state: 'locked', remote: 'main' });
    // The uuid-named VHD directory's window, recorded by identity without a version field.
    const legacy = entries.find((e) => /data\/[0-9a-f-]{36}\.vhd$/.test(e!.path))!;
    expect(await new UnitWindows(index, 'main').read(legacy.identity!)).toEqual({
      until: Date.parse('2026-11-25T12:00:00Z'),
      path: legacy.path,
    });
    expect(ProvenBackups.parse(await readFile(path.join(index, 'proven-main.json'), 'utf8')).size).toBe(3);
    const clock = await readClockState(index);
    expect(clock.frozen).toBeUndefined();
    expect(clock.lastWall).toBeGreaterThanOrEqual(Date.parse('2026-11-20T12:00:00Z'));
    expect(clock.baseline?.bootId).toBe('xo-immutable-formats-v1-fixture-boot');
  });

  it('verify, rebuild-index and lift work on the index it left', async () => {
    const copy = await restoreFixture();
    const { index, entries } = copy;
    const config = await writeConfig(copy);

    const verify = cli('verify', '--config', config, '--json');
    expect(verify.stderr).toBe('');
    expect(verify.status).toBe(0);

    const rebuild = cli('rebuild-index', '--config', config, '--json');
    expect(rebuild.status).toBe(0);
    expect(await fixtureEntries(index)).toHaveLength(entries.length);

    // Every backup left its 7-day window by 2026-11-26: lift unlocks all of them and forgets their entries.
    const lift = cli('lift', '--config', config, '--json');
    expect(lift.status).toBe(0);
    for (const entry of entries) expect(isImmutable(entry.path), entry.path).toBe(false);
    expect(await fixtureEntries(index)).toHaveLength(0);
    // The index now says which format it holds, so that a release that knows format.json refuses a newer one.
    expect(JSON.parse(await readFile(path.join(index, 'format.json'), 'utf8'))).toEqual({ version: 1 });
  }, 120_000);

  it('the daemon starts on it, lifts what expired, and goes on writing version 1', async () => {
    const { base, root, index, entries } = await restoreFixture();
    const { daemon } = await startDaemon(
      { base, root, indexPath: index },
      {
        config: { remotes: [{ id: 'main', root, immutabilityDurationMs: 7 * DAY, rebuildIndexOnStart: false }] },
      },
    );
    await daemon.stop();
    for (const entry of entries) expect(isImmutable(entry.path), entry.path).toBe(false);
    expect(JSON.parse(await readFile(path.join(index, 'clock.json'), 'utf8'))).toMatchObject({ version: 1 });
    expect(JSON.parse(await readFile(path.join(index, 'format.json'), 'utf8'))).toEqual({ version: 1 });
  });
});

describe('an index of a newer format (a downgrade)', () => {
  it('is refused by the daemon and every command, with what to do, and left as it is', async () => {
    const copy = await restoreFixture();
    const { index, entries } = copy;
    const config = await writeConfig(copy);
    await writeFile(path.join(index, 'format.json'), '{"version":2}\n');
    const message = `${index}/format.json has format version 2, and this release reads up to 1`;

    for (const args of [['protect'], ['status'], ['lift'], ['verify'], ['rebuild-index']]) {
      const result = cli(...args, '--config', config);
      expect(result.status, args[0]).toBe(args[0] === 'protect' || args[0] === 'status' ? 3 : 1);
      expect(result.stdout + result.stderr, args[0]).toContain(message);
      expect(result.stdout + result.stderr, args[0]).toContain('install that newer version again');
    }
    for (const entry of entries) expect(isImmutable(entry.path), entry.path).toBe(true);
    expect(await fixtureEntries(index)).toHaveLength(entries.length);
  }, 120_000);

  it('keeps a unit whose .windows/ record is newer, and freezes lifting on a newer clock.json', async () => {
    const { index, entries } = await restoreFixture();
    const windows = path.join(index, '.windows', 'main');
    const [record] = await readdir(windows);
    const recordFile = path.join(windows, record!);
    const text = JSON.parse(await readFile(recordFile, 'utf8')) as object;
    await writeFile(recordFile, JSON.stringify({ ...text, version: 2 }));
    const legacy = entries.find((e) => /data\/[0-9a-f-]{36}\.vhd$/.test(e.path))!;
    expect((await new UnitWindows(index, 'main').read(legacy.identity!))?.until).toBe(Number.POSITIVE_INFINITY);

    await writeFile(path.join(index, 'clock.json'), '{"version":2,"lastWall":0}\n');
    const clock = await readClockState(index);
    expect(clock.frozen?.reason).toContain('has format version 2, and this release reads up to 1');
  });
});
