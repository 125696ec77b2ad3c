import { spawn, spawnSync } from 'node:child_process';
import { lstatSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { dayOf } from '../../src/index/entry.js';
import { IndexStore } from '../../src/index/store.js';
import { DAY, startDaemon } from '../support/daemon.js';
import { isImmutable, stopBeforeCleanup, tempRemote, waitFor } from '../support/remote.js';

const HOUR = 3_600_000;
// How long the swapping goes on once the json is there: hundreds of lock attempts on a loaded machine.
const RACE_MS = 3_000;

// Exchanges two names with renameat2(RENAME_EXCHANGE) in a tight loop until SIGTERM, then puts them back as they were
// (unless one got locked, which stops every exchange). x86_64: 316; aarch64: 276.
const SWAPPER = `
my ($a, $b) = @ARGV; my $nr = \`uname -m\` =~ /aarch64/ ? 276 : 316; my $swapped = 0; my $stop = 0;
$SIG{TERM} = sub { $stop = 1 };
print "ready\\n"; STDOUT->flush();
until ($stop) { $swapped ^= 1 if syscall($nr, -100, $a, -100, $b, 2) == 0; select(undef, undef, undef, 0.0002) }
for (1 .. 100) { last unless $swapped; $swapped ^= 1 if syscall($nr, -100, $a, -100, $b, 2) == 0 }
`;

async function startSwapping(a: string, b: string): Promise<() => Promise<void>> {
  const child = spawn('perl', ['-e', SWAPPER, a, b], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  const stop = async (): Promise<void> => {
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(killer);
  };
  stopBeforeCleanup(stop);
  return stop;
}

// Everything under `folder` (itself included) immutable.
function lockedWhole(folder: string): boolean {
  const out = spawnSync('lsattr', ['-R', '-a', '-d', folder], { encoding: 'utf8' });
  const all = spawnSync('lsattr', ['-R', '-a', folder], { encoding: 'utf8' });
  return [...out.stdout.split('\n'), ...all.stdout.split('\n')]
    .map((line) => /^(\S+) (\/.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null && !m[2]!.endsWith('/.') && !m[2]!.endsWith('/..'))
    .every((m) => m[1]!.includes('i'));
}

const original = process.env.XO_IMMUTABLE_FLAGS_WALK;
afterEach(() => {
  if (original === undefined) delete process.env.XO_IMMUTABLE_FLAGS_WALK;
  else process.env.XO_IMMUTABLE_FLAGS_WALK = original;
});

describe.each([
  ['openat2', ''],
  ['the component walk', '1'],
])('a VHD directory swapped with a file while its backup completes (flag helper: %s)', (_name, walk) => {
  it('never records a mutable directory, or a file in its place, as locked, and locks it once the swapping stops', async () => {
    process.env.XO_IMMUTABLE_FLAGS_WALK = walk;
    const remote = await tempRemote();
    const dt = xoDatetime(Date.now() - HOUR);
    const backup = await writeVmBackup(remote.root, { vm: 'vm', datetime: dt, disks: [{ type: 'vhd-directory' }] });
    const directory = backup.units.find((u) => u.endsWith(`/data/${dt}.vhd`))!;
    const impostor = path.join(path.dirname(directory), 'swap');
    await writeFile(impostor, 'not a VHD directory');
    const directoryIno = lstatSync(directory).ino;
    const fileIno = lstatSync(impostor).ino;
    // The json arrives while the swapping goes on.
    const held = path.join(remote.base, 'held.json');
    await rename(backup.label, held);
    const { daemon } = await startDaemon(remote, {
      config: {
        remotes: [{ id: 'r', root: remote.root, immutabilityDurationMs: DAY, rebuildIndexOnStart: false }],
        rescanEveryMs: 100,
      },
    });
    const index = new IndexStore(remote.indexPath, 'r');
    const day = dayOf(Date.parse(`${dt.slice(0, 4)}-${dt.slice(4, 6)}-${dt.slice(6, 8)}T00:00:00Z`));
    const violations: string[] = [];
    const check = async (): Promise<void> => {
      const entry = await index.read(day, directory).catch(() => undefined);
      if (entry?.state !== 'locked') return;
      const ino = Number(entry.identity?.ino);
      if (ino === fileIno)
        violations.push(`the file was recorded as ${entry.recursive ? 'the directory' : 'the unit'}`);
      if (ino === directoryIno && !entry.recursive) violations.push('the directory was recorded as a file');
      // Locked before its entry is completed, and immutable from then on (it cannot be renamed either).
      const where = [directory, impostor].find((p) => lstatSync(p, { throwIfNoEntry: false })?.ino === directoryIno);
      if (ino === directoryIno && where !== undefined && !isImmutable(where))
        violations.push('a mutable directory was recorded as locked');
    };

    const stopSwapping = await startSwapping(directory, impostor);
    await rename(held, backup.label);
    const started = Date.now();
    while (Date.now() - started < RACE_MS) {
      await check();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await stopSwapping();
    await check();
    expect([...new Set(violations)]).toEqual([]);

    // Once the swapping stops: the directory in its place, locked whole, recorded with its own identity.
    await waitFor(
      async () =>
        lstatSync(directory).ino === directoryIno &&
        lockedWhole(directory) &&
        Number((await index.read(day, directory))?.identity?.ino) === directoryIno,
      'the VHD directory to be locked whole and recorded',
      60_000,
    );
    const entry = await index.read(day, directory);
    expect(entry).toMatchObject({ state: 'locked', recursive: true });
    expect(isImmutable(impostor)).toBe(false);
    await daemon.stop();
  }, 120_000);
});
