import { spawn, spawnSync } from 'node:child_process';
import { lstatSync, readdirSync, renameSync, rmdirSync, type Stats } from 'node:fs';
import { mkdir, readFile, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { openRemoteContext } from '../../src/context/open.js';
import { xoDatetime, writeVmBackup, type WrittenBackup } from '../../src/demo/sample-remote.js';
import { liftRemote } from '../../src/lift/apply.js';
import { DAY, startDaemon } from '../support/daemon.js';
import { allImmutable, isImmutable, stopBeforeCleanup, tempFolder, tempRemote, waitFor } from '../support/remote.js';

// How long each phase races: a few seconds of swaps, hundreds of lock or unlock attempts.
const RACE_MS = 4_000;
const PAIRS_PER_KIND = 2;

// Swaps each folder for a symbolic link to its twin outside the remote and back, all at once, every 0.7 ms, until
// killed. Arguments come in threes: the folder, where it waits while the link stands in, where the link waits. Each
// swap keeps its state (0 home, 1 folder away, 2 link in its place): a rename that fails (inside a directory the daemon
// holds locked for a moment) is tried again next round, never skipped, so no swap is left half done for good.
const SWAPPER = `
my @swaps; push @swaps, [splice(@ARGV, 0, 3), 0] while @ARGV;
print "ready\\n"; STDOUT->flush();
while (1) {
  for my $s (@swaps) {
    my ($f, $real, $link) = @$s; next if $s->[3] != 0;
    $s->[3] = 1 if rename($f, $real); $s->[3] = 2 if $s->[3] == 1 && rename($link, $f);
  }
  select(undef, undef, undef, 0.0007);
  for my $s (@swaps) {
    my ($f, $real, $link) = @$s;
    $s->[3] = 1 if $s->[3] == 2 && rename($f, $link); $s->[3] = 0 if $s->[3] == 1 && rename($real, $f);
  }
  select(undef, undef, undef, 0.0007);
}`;

interface Swap {
  folder: string;
  real: string;
  link: string;
}

// Runs the swapper; what it returns stops it and puts every folder back (see putBack).
async function startSwapping(swaps: readonly Swap[]): Promise<() => Promise<Swap[]>> {
  const child = spawn('perl', ['-e', SWAPPER, ...swaps.flatMap((s) => [s.folder, s.real, s.link])], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  const kill = async (): Promise<void> => {
    child.kill('SIGKILL');
    await exited;
  };
  stopBeforeCleanup(kill);
  // Killed wherever it is: putBack finishes any swap it left half done.
  return async () => {
    await kill();
    return putBack(swaps);
  };
}

// Puts back every folder the swapper left out, as an admin would, and returns the swaps whose way back stays shut: a
// `blocks` folder out of its VHD directory at the instant the daemon locked that directory (XO's layout allows a VHD
// directory without `blocks`: vhd-lib creates it with the first block written), or the link standing in for it then
// (a directory unit holding what XO never writes is locked all the same; the link in it is never followed).
async function putBack(swaps: readonly Swap[]): Promise<Swap[]> {
  const shut: Swap[] = [];
  for (const swap of swaps)
    await waitFor(
      () => {
        const here = lstatOrUndefined(swap.folder);
        if (here?.isSymbolicLink() === true) {
          if (tryRename(swap.folder, swap.link)) return false;
          return isImmutable(path.dirname(swap.folder)) && shut.push(swap) > 0;
        } else if (here !== undefined) {
          if (lstatOrUndefined(swap.real) === undefined) return true;
          // The daemon settled the link standing in for it: the link moved aside, an empty folder in its place
          // (docs/security.md, "Symlinked folders"), which the admin removes before putting the real one back.
          tryRmdir(swap.folder);
          return false;
        } else if (tryRename(swap.real, swap.folder)) return true;
        else if (isImmutable(path.dirname(swap.folder))) return shut.push(swap) > 0;
        return false;
      },
      `${swap.folder} to be put back`,
      60_000,
    );
  return shut;
}

// The folders holding a swap shut out that are not units (a VHD directory is one).
function notUnits(shut: readonly Swap[], units: readonly string[]): string[] {
  return shut.map((s) => path.dirname(s.folder)).filter((folder) => !units.includes(folder));
}

function lstatOrUndefined(file: string): Stats | undefined {
  try {
    return lstatSync(file);
  } catch {
    return undefined;
  }
}

function tryRmdir(folder: string): void {
  try {
    rmdirSync(folder);
  } catch {
    // Not empty, or gone meanwhile: looked at again.
  }
}

function tryRename(from: string, to: string): boolean {
  try {
    renameSync(from, to);
    return true;
  } catch {
    return false;
  }
}

// Every file and folder under `folder`, with whether it is immutable (links and FIFOs have no flags to show).
function flagsUnder(folder: string): Map<string, boolean> {
  const out = spawnSync('lsattr', ['-R', '-a', folder], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
  const flags = new Map<string, boolean>();
  for (const line of out.stdout.split('\n')) {
    const match = /^(\S+) (\/.*)$/.exec(line);
    if (match === null || match[2]!.endsWith('/.') || match[2]!.endsWith('/..')) continue;
    flags.set(match[2]!, match[1]!.includes('i'));
  }
  return flags;
}

function entriesUnder(indexPath: string): number {
  try {
    return readdirSync(path.join(indexPath, 'r'), { recursive: true }).length;
  } catch {
    return 0;
  }
}

// A path away for a moment (its folder swapped) counts as still locked.
function stillLocked(unit: string): boolean {
  try {
    return isImmutable(unit);
  } catch {
    return true;
  }
}

// A twin of `folder` outside the remote (same names inside), and a link to it waiting in `spot` (outside any VHD
// directory: a link inside one is a problem of its own).
async function twin(folder: string, spot: string, outside: string, name: string): Promise<Swap> {
  const copy = path.join(outside, name);
  spawnSync('cp', ['-a', folder, copy]);
  const swap = { folder, real: path.join(spot, `${name}.real`), link: path.join(spot, `${name}.link`) };
  await symlink(copy, swap.link);
  return swap;
}

describe('rename race', () => {
  it('never changes a flag outside the remote while folders are swapped for links as the daemon locks and lifts', async () => {
    const remote = await tempRemote();
    const outside = await tempFolder('xo-immutable-outside-');
    await mkdir(path.join(outside, 'twins'));
    const twins = path.join(outside, 'twins');
    const dt = xoDatetime(Date.now() - 2 * DAY);
    const backups: WrittenBackup[] = [];
    const swapped: Swap[] = [];
    for (let i = 0; i < 3 * PAIRS_PER_KIND; i++) {
      const backup = await writeVmBackup(remote.root, {
        vm: `vm-${i}`,
        datetime: dt,
        disks: [{ type: 'vhd-directory' }, { type: 'flat' }],
      });
      backups.push(backup);
      const vhdDirectory = backup.units.find((u) => u.endsWith(`/data/${dt}.vhd`))!;
      // A VM folder, a data/ folder, a folder inside a VHD directory.
      const kind = i % 3;
      const folder =
        kind === 0
          ? path.dirname(backup.label)
          : kind === 1
            ? path.dirname(vhdDirectory)
            : path.join(vhdDirectory, 'blocks');
      const spot = kind === 2 ? path.dirname(path.dirname(vhdDirectory)) : path.dirname(folder);
      swapped.push(await twin(folder, spot, twins, `twin-${i}`));
    }
    const units = backups.flatMap((b) => b.units);
    expect([...flagsUnder(twins).values()].length).toBeGreaterThan(30);

    // Locking: the daemon catches up and rescans every 100 ms while the folders are swapped.
    let stopSwapping = await startSwapping(swapped);
    // start() returns once the catch-up is locked, which the swapping delays: the race runs from the first index entry
    // (written right before a lock), however long a loaded machine takes to get there.
    const starting = startDaemon(remote, { config: { rescanEveryMs: 100 } });
    await waitFor(() => entriesUnder(remote.indexPath) > 0, 'the daemon to start locking', 120_000);
    await new Promise((resolve) => setTimeout(resolve, RACE_MS));
    // Only a directory unit may shut a folder out (locked while it was away), never a folder above the units.
    expect(notUnits(await stopSwapping(), units), 'folders locked that are no unit').toEqual([]);
    const { daemon } = await starting;
    const lockedOutside = [...flagsUnder(twins)].filter(([, immutable]) => immutable).map(([p]) => p);
    expect(lockedOutside, 'flags set outside the remote while locking').toEqual([]);

    // Unlocking: everything locked inside, everything outside locked too, then lift passes run while swapping.
    await waitFor(
      () => allImmutable(units),
      () =>
        `every unit to be locked once the swapping stopped; not locked: ${units.filter((u) => !stillLocked(u)).join(', ')}`,
      60_000,
    );
    await daemon.stop();
    spawnSync('chattr', ['-R', '+i', twins]);
    const before = flagsUnder(twins);
    expect([...before.values()].every((immutable) => immutable)).toBe(true);
    const context = await openRemoteContext(
      { id: 'r', root: remote.root, immutabilityDurationMs: DAY, rebuildIndexOnStart: false },
      remote.indexPath,
    );
    const attributes = new IoctlAdapter();
    stopSwapping = await startSwapping(swapped);
    const started = Date.now();
    while (Date.now() - started < RACE_MS && units.some((u) => stillLocked(u)))
      await liftRemote(context, attributes, { now: Date.now() + 30 * DAY, dryRun: false, all: false });
    expect(notUnits(await stopSwapping(), units), 'folders locked that are no unit').toEqual([]);
    const unlockedOutside = [...flagsUnder(twins)].filter(([, immutable]) => !immutable).map(([p]) => p);
    expect(unlockedOutside, 'flags cleared outside the remote while lifting').toEqual([]);
    // Not by refusing everything: what was found in place was lifted.
    expect(units.filter((u) => !stillLocked(u)).length).toBeGreaterThan(0);
  }, 240_000);
});

describe('rename race on reads', () => {
  it('never reads a json through a VM folder swapped for a link: what the outside twin names is not locked', async () => {
    const remote = await tempRemote();
    const outside = await tempFolder('xo-immutable-outside-');
    const backup = await writeVmBackup(remote.root, { vm: 'vm', datetime: xoDatetime(Date.now() - 3600_000) });
    const folder = path.dirname(backup.label);
    // An old export of the VM, past its window: nothing inside the remote names it.
    const old = path.join(folder, '20200101T000000Z.xva');
    await writeFile(old, 'old export');
    const swap = await twin(folder, path.dirname(folder), outside, 'twin');
    // The twin's json, same name, also names the old export: only a json read through the link can name it.
    const twinJson = path.join(outside, 'twin', path.basename(backup.label));
    const parsed = JSON.parse(await readFile(twinJson, 'utf8')) as Record<string, unknown>;
    await writeFile(twinJson, JSON.stringify({ ...parsed, xva: './20200101T000000Z.xva' }));
    await utimes(twinJson, new Date(Date.now() - 3600_000), new Date(Date.now() - 3600_000));

    const { daemon, logs } = await startDaemon(remote, { config: { rescanEveryMs: 50, jsonSettleMs: 300 } });
    await waitFor(() => allImmutable(backup.units), 'the backup to be locked');
    const stopSwapping = await startSwapping([swap]);
    const started = Date.now();
    const metLink = (): boolean => logs.some((l) => l.security === true && String(l.msg).includes('symbolic link'));
    // Races RACE_MS at least, and on until the daemon met the link once (rescans come late on a loaded machine); stops
    // at once if the old export gets locked.
    await waitFor(
      () => stillLockedOrAway(old) || (Date.now() - started >= RACE_MS && metLink()),
      'the daemon to meet the link in place of the VM folder',
      60_000,
    );
    await stopSwapping();
    await daemon.stop();
    expect(isImmutable(old), 'an export named only by the json outside the remote').toBe(false);
    expect(flagsUnder(path.join(outside, 'twin')).size).toBeGreaterThan(0);
    expect([...flagsUnder(path.join(outside, 'twin')).values()].some((immutable) => immutable)).toBe(false);
    // Seen, and said: a read that met a link is a security warning naming the folder.
    expect(metLink()).toBe(true);
  }, 120_000);
});

// Locked, or away for a moment (its folder swapped): the loop above stops as soon as it is locked.
function stillLockedOrAway(file: string): boolean {
  try {
    return isImmutable(file);
  } catch {
    return false;
  }
}
