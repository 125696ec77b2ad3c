import { existsSync } from 'node:fs';
import { rm, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { main } from '../../src/cli/main.js';
import type { Daemon } from '../../src/daemon/daemon.js';
import { IndexStore } from '../../src/index/store.js';
import { liftRemote } from '../../src/lift/apply.js';
import { runCli } from '../support/cli.js';
import { DAY, startDaemon } from '../support/daemon.js';
import {
  immutableAmong,
  isImmutable,
  stopBeforeCleanup,
  tempFolder,
  tempRemote,
  waitFor,
  writeConfigFile,
  type TestRemote,
} from '../support/remote.js';
import type { WrittenBackup, XoRemote, Vm } from './harness.mjs';
import { missingForXo } from './requirements.js';
import { remoteContextOf } from '../support/remote-context.js';

// Xen Orchestra's own code writes, restores and prunes backups on a remote the real daemon protects (docs/compatibility.md).
// XO's packages load libfuse.so.2 at import: without it the suite is skipped with one line, except in CI where it fails.
const missing = missingForXo();
if (missing !== undefined && process.env.CI !== undefined) throw new Error(`XO compatibility suite: ${missing}`);
if (missing !== undefined) console.log(`xo-compat: skipped, ${missing}`);
const h = missing === undefined ? await import('./harness.mjs') : undefined;

const HOUR = 3_600_000;
// XO's remote settings for each kind of remote (encryption requires VHD directories in xo-server).
const KINDS = {
  flat: { useVhdDirectory: false },
  'vhd-directory': { useVhdDirectory: true },
  encrypted: { useVhdDirectory: true, encryptionKey: 'xo-compat-suite-key-32-character' },
} as const;
type Kind = keyof typeof KINDS;

interface ProtectedChain {
  remote: TestRemote;
  xo: XoRemote;
  vm: Vm;
  backups: WrittenBackup[];
  // The daemon protecting it, when the chain was written under one.
  daemon?: Daemon;
}

// A full and two deltas of a VM with two small disks, written by XO's code into a remote the daemon protects
// (immutability duration 7 days), each backup a few hours old so that all three are inside the window.
async function protectedChain(kind: Kind): Promise<ProtectedChain> {
  const harness = h!;
  const remote = await tempRemote();
  // The shortest jsonSettleTime an admin can set: encrypted jsons (ciphertext) count as complete after it.
  const config = { config: { jsonSettleMs: 1_000 } };
  const open = async () => {
    const xo = await harness.openRemote({ root: remote.root, ...KINDS[kind], retryEperm: false });
    stopBeforeCleanup(() => xo.close());
    return xo;
  };
  // The daemon first, on a new empty remote: XO must still be able to set it up, encryption included (XO refuses a
  // root holding anything but dotfiles and its own two files: "Remote directory must be empty.").
  const { daemon } = await startDaemon(remote, config);
  const xo: XoRemote = await open();
  if (kind === 'encrypted')
    console.log('xo-compat encrypted: XO set up encryption on a root the daemon was protecting');
  const vm = harness.makeVm({ disks: [8 * harness.MiB, 16 * harness.MiB] });
  const now = Date.now();
  const backups = await harness.writeChain(xo, vm, [now - 3 * HOUR, now - 2 * HOUR, now - HOUR], {
    // Backups come hours apart: the daemon has locked one (its json and disks) before XO writes the next.
    onWritten: (backup) => {
      const top = [backup.metadataPath, ...backup.disks.map((d) => d.path)].map((p) => path.join(remote.root, p));
      return waitFor(() => immutableAmong(top).length === top.length, `backup ${backup.datetime} to be locked`);
    },
  });
  return { remote, xo, vm, backups, daemon };
}

async function filesOf(chain: ProtectedChain): Promise<string[]> {
  const files: string[] = [];
  for (const backup of chain.backups) files.push(...(await h!.backupFiles(chain.xo, backup)));
  return files;
}

async function expectEveryFileImmutable(kind: Kind): Promise<void> {
  const chain = await protectedChain(kind);
  const files = await filesOf(chain);
  const unlocked = () => {
    const locked = new Set(immutableAmong(files));
    return files.filter((f) => !locked.has(f));
  };
  // The daemon locks a backup's units together, and its json and disks are locked already: this wait is short.
  await waitFor(() => unlocked().length === 0, 'every file to be immutable', 5_000).catch(() => undefined);
  const left = unlocked();
  console.log(
    `xo-compat ${kind}: ${files.length - left.length}/${files.length} files of ${chain.backups.length} completed backups immutable`,
  );
  expect(
    left.map((f) => path.relative(chain.remote.root, f)),
    'files of completed backups left mutable',
  ).toEqual([]);
}

async function expectRestoresIdentically(kind: Kind, chain: ProtectedChain, when: string): Promise<void> {
  const failed: string[] = [];
  for (const backup of chain.backups) {
    const mismatches = await h!.restoreMismatches(chain.xo, backup);
    if (mismatches.length > 0) failed.push(`${backup.datetime}: ${mismatches.join(', ')}`);
  }
  const disks = chain.backups.reduce((n, b) => n + b.disks.length, 0);
  console.log(
    `xo-compat ${kind}: ${chain.backups.length - failed.length}/${chain.backups.length} backups (${disks} disks) restored identically by XO ${when}`,
  );
  expect(failed, 'backups XO restored with different content').toEqual([]);
}

// XO's retention on the oldest backup: deleteDeltaVmBackups, then cleanVm with merge and remove.
async function pruneOldest(chain: ProtectedChain) {
  const files = await filesOf(chain);
  const before = await h!.fingerprints(chain.remote.root, files);
  const { listed, outcome } = await h!.pruneOldestBackup(chain.xo, chain.vm.uuid);
  expect(listed).toHaveLength(chain.backups.length);
  const after = await h!.fingerprints(chain.remote.root, files);
  const touched = files.filter((f) => {
    const key = path.relative(chain.remote.root, f);
    return before[key] !== after[key];
  });
  return { outcome, files, before, after, touched };
}

// A full and two real deltas written by XO's code while nothing was locked (on a flat-VHD remote a locked parent makes
// every delta a full), then locked by the daemon's catch-up: the chains stage-restore must follow.
async function chainLockedAfterwards(kind: Kind): Promise<ProtectedChain> {
  const harness = h!;
  const remote = await tempRemote();
  const xo = await harness.openRemote({ root: remote.root, ...KINDS[kind], retryEperm: false });
  stopBeforeCleanup(() => xo.close());
  const vm = harness.makeVm({ disks: [8 * harness.MiB, 16 * harness.MiB] });
  const now = Date.now();
  const backups = await harness.writeChain(xo, vm, [now - 3 * HOUR, now - 2 * HOUR, now - HOUR]);
  for (const delta of backups.slice(1)) expect(delta.fellBackToFull, delta.datetime).toEqual([]);
  const chain = { remote, xo, vm, backups };
  const files = await filesOf(chain);
  await startDaemon(remote, { config: { jsonSettleMs: 1_000 } });
  await waitFor(() => immutableAmong(files).length === files.length, 'every file to be locked');
  return chain;
}

// stage-restore as an admin runs it (the real CLI, in this process): one backup into a new folder, opened by XO.
async function stageAndOpen(chain: ProtectedChain, kind: Kind, backup: WrittenBackup): Promise<XoRemote> {
  const to = path.join(await tempFolder(), 'staged');
  const out: string[] = [];
  const io = { out: (line: string) => out.push(line), err: (line: string) => out.push(line) };
  const args = ['--remote', 'r', '--vm', chain.vm.uuid, '--backup', backup.datetime, '--to', to, '--json'];
  // jsonSettleTime as the daemon ran with: an encrypted json (ciphertext) is complete once unchanged that long.
  const config = path.join(chain.remote.base, 'stage-config.json');
  const remotes = { r: { root: chain.remote.root, immutabilityDuration: '7d' } };
  await writeFile(config, JSON.stringify({ indexPath: chain.remote.indexPath, jsonSettleTime: '1s', remotes }));
  const code = await main(['stage-restore', '-c', config, ...args], io);
  expect(code, out.join('\n')).toBe(0);
  const staged = await h!.openRemote({ root: to, ...KINDS[kind] });
  stopBeforeCleanup(() => staged.close());
  return staged;
}

describe.skipIf(h === undefined)("XO's own code on a remote the daemon protects", () => {
  describe.each(['flat', 'vhd-directory'] as const)('%s remote', (kind) => {
    it('every file of every completed backup is immutable', async () => {
      await expectEveryFileImmutable(kind);
    });
  });

  // The requirement on encrypted remotes, in its own test: the daemon must lock the data directory behind each
  // alias, whose content it cannot read (ciphertext).
  it('encrypted remote: every file of every completed backup is immutable, data/<dt>.vhd/ included', async () => {
    await expectEveryFileImmutable('encrypted');
  });

  describe.each(['vhd-directory', 'encrypted'] as const)('%s remote', (kind) => {
    it("XO's restore reads every protected backup back identically", async () => {
      const chain = await protectedChain(kind);
      await expectRestoresIdentically(kind, chain, 'on the protected remote');
    });

    it("XO's retention removes and changes nothing inside the window, and every backup still restores", async () => {
      const chain = await protectedChain(kind);
      const { outcome, files, before, after, touched } = await pruneOldest(chain);
      expect(outcome.deleteError?.code, 'unlinking the oldest json').toBe('EPERM');
      console.log(
        `xo-compat ${kind}: ${files.length - touched.length}/${files.length} files of ${chain.backups.length} backups unchanged after XO's retention`,
      );
      expect(after).toEqual(before);
      await expectRestoresIdentically(kind, chain, "after XO's retention");
    });
  });

  // Today's truths on flat-VHD remotes (issue 15): vhd-lib opens every .vhd read-write ('r+'), even to read it.
  it("flat VHD: XO's deltas fall back to fulls, the locked parent cannot be opened (EPERM, issue 15)", async () => {
    const chain = await protectedChain('flat');
    const [, ...deltas] = chain.backups;
    for (const delta of deltas) {
      expect(delta.fellBackToFull, delta.datetime).toEqual(delta.disks.map((d) => d.vdiUuid));
      expect(delta.baseCheckErrors?.map((e) => e.code)).toEqual(delta.disks.map(() => 'EPERM'));
    }
    console.log(
      `xo-compat flat: ${deltas.length}/${deltas.length} deltas written as fulls by XO (locked parent: EPERM)`,
    );
  });

  it('flat VHD: XO cannot restore a locked backup (EPERM, issue 15)', async () => {
    const chain = await protectedChain('flat');
    for (const backup of chain.backups) {
      await expect(h!.restoreBackup(chain.xo, backup.metadataPath), backup.datetime).rejects.toMatchObject({
        code: 'EPERM',
      });
    }
    console.log(`xo-compat flat: 0/${chain.backups.length} locked backups restorable by XO (EPERM)`);
  });

  // A repair lift (issue 15, item 3): the held VM restores in place, and is locked again once the hold ends.
  it('flat VHD: after hold start XO restores the VM, and its backups are locked again after the hold', async () => {
    const chain = await protectedChain('flat');
    const files = await filesOf(chain);
    await expect(h!.restoreBackup(chain.xo, chain.backups[0]!.metadataPath)).rejects.toMatchObject({ code: 'EPERM' });
    const config = await writeConfigFile(chain.remote);
    const vm = ['--config', config, '--remote', 'r', '--vm', chain.vm.uuid];
    // The daemon runs in this process: the command is awaited, not run synchronously, so the daemon can acknowledge.
    const lifted = await runCli([
      'hold',
      'start',
      ...vm,
      '--for',
      '1h',
      '--yes',
      '--reason',
      'xo-compat restore in place',
    ]);
    expect(lifted.status, lifted.stderr).toBe(0);
    expect(immutableAmong(files)).toEqual([]);
    await expectRestoresIdentically('flat', chain, 'in place after a repair lift');
    const ended = await runCli(['hold', 'end', ...vm]);
    expect(ended.status, ended.stderr).toBe(0);
    await waitFor(() => immutableAmong(files).length === files.length, 'the held VM to be locked again');
    console.log(`xo-compat flat: ${files.length}/${files.length} files locked again after the hold`);
  });

  it("flat VHD: XO's cleanVm judges the locked backups broken, and deletes nothing (EPERM, issue 15)", async () => {
    const chain = await protectedChain('flat');
    const { outcome, files, before, after, touched } = await pruneOldest(chain);
    expect(outcome.deleteError?.code, 'unlinking the oldest json').toBe('EPERM');
    // Every disk fails to open: each backup is "incomplete", and cleanVm rejects on the json it tries to remove.
    expect(outcome.warnings.filter((w) => w.message === 'incremental backup is incomplete')).toHaveLength(
      chain.backups.length,
    );
    expect(outcome.cleanError?.code, 'cleanVm').toBe('EPERM');
    console.log(
      `xo-compat flat: ${files.length - touched.length}/${files.length} files of ${chain.backups.length} backups unchanged after XO's retention`,
    );
    expect(after).toEqual(before);
  });

  // Issue 24: cleanVm opens every disk first and deletes what it judged broken last. A lift in between would unlock
  // backups cleanVm already called broken (locked flat VHDs), and cleanVm would delete them.
  it("flat VHD: a lift pass while XO's cleanVm runs unlocks nothing of that VM; XO keeps every backup", async () => {
    const harness = h!;
    const remote = await tempRemote();
    const xo = await harness.openRemote({ root: remote.root, ...KINDS.flat, retryEperm: false });
    stopBeforeCleanup(() => xo.close());
    const vm = harness.makeVm({ disks: [8 * harness.MiB] });
    const now = Date.now();
    const backups = await harness.writeChain(xo, vm, [now - 3 * HOUR, now - 2 * HOUR, now - HOUR]);
    const chain = { remote, xo, vm, backups };
    const files = await filesOf(chain);
    const { daemon } = await startDaemon(remote, { config: { jsonSettleMs: 1_000 } });
    await waitFor(() => immutableAmong(files).length === files.length, 'every file to be locked');
    await daemon.stop();
    const context = remoteContextOf(remote.root, new IndexStore(remote.indexPath, 'r'));
    // By the lift's clock a month has passed: every backup has left its window.
    const lift = () => liftRemote(context, new IoctlAdapter(), { now: now + 30 * DAY, dryRun: false, all: false });

    const during = await harness.cleanVmInterrupted(xo, vm.uuid, lift);
    expect(during.interrupted, 'cleanVm deleting something').toBe(true);
    const jsons = backups.map((b) => path.join(remote.root, b.metadataPath));
    expect(
      jsons.filter((json) => existsSync(json)),
      'jsons left after cleanVm',
    ).toEqual(jsons);

    const after = await lift();
    expect(after.unlocked.length, 'units lifted once XO is done').toBe(files.length);
    const next = await harness.runRetention(xo, vm.uuid, []);
    expect(next.cleanError).toBeNull();
    expect(await harness.listVmBackups(xo, vm.uuid)).toHaveLength(backups.length);
    await expectRestoresIdentically('flat', chain, 'after a lift held back during cleanVm');
  });

  it("a lift leaves XO's cache.json.gz: XO's next cleanVm finds it in step and warns of nothing", async () => {
    const chain = await protectedChain('vhd-directory');
    const files = await filesOf(chain);
    const cache = path.join(chain.remote.root, path.dirname(chain.backups[0]!.metadataPath), 'cache.json.gz');
    expect(existsSync(cache), 'XO wrote its cache').toBe(true);
    const context = remoteContextOf(chain.remote.root, new IndexStore(chain.remote.indexPath, 'r'));
    await chain.daemon!.stop();
    // By the lift's clock a month has passed: every backup has left its window.
    const lifted = await liftRemote(context, new IoctlAdapter(), {
      now: Date.now() + 30 * DAY,
      dryRun: false,
      all: false,
    });
    expect(lifted.failed).toEqual([]);
    expect(immutableAmong(files), 'files still locked after the lift').toEqual([]);
    // What XO's next incremental run does first (IncrementalRemoteWriter#beforeBackup): cleanVm, merge and remove.
    const next = await h!.runRetention(chain.xo, chain.vm.uuid, []);
    expect(next.cleanError).toBeNull();
    expect(next.warnings.map((w) => w.message)).not.toContain('unexpected number of entries in backup cache');
    expect(existsSync(cache)).toBe(true);
  });

  describe.each(Object.keys(KINDS) as Kind[])('%s remote', (kind) => {
    it("XO's padlock never shows (XO bug: isImmutable reads the json with {flag:'r+'}, fs honours only flags)", async () => {
      const chain = await protectedChain(kind);
      expect(isImmutable(path.join(chain.remote.root, 'immutability.json'))).toBe(true);
      // Without its cache, listVmBackups reads every json through readVmBackupMetadata, the one path that sets
      // isImmutable (the cache keeps raw metadata): with XO's bug fixed, the locked jsons would show a padlock.
      await rm(path.join(chain.remote.root, path.dirname(chain.backups[0]!.metadataPath), 'cache.json.gz'));
      const listed = await h!.listVmBackups(chain.xo, chain.vm.uuid);
      expect(listed).toHaveLength(chain.backups.length);
      const padlocks = listed.filter((b) => b.isImmutable === true);
      console.log(
        `xo-compat ${kind}: ${padlocks.length}/${listed.length} locked backups show XO's padlock (isImmutable)`,
      );
      expect(padlocks).toEqual([]);
    });
  });

  // Issue 15: a copy XO can open, made without unlocking anything.
  describe.each(['flat', 'vhd-directory'] as const)('%s remote', (kind) => {
    it('XO restores each backup from its staged copy identically; the originals stay locked', async () => {
      const chain = await chainLockedAfterwards(kind);
      const files = await filesOf(chain);
      for (const backup of chain.backups) {
        const staged = await stageAndOpen(chain, kind, backup);
        // The same data XO wrote, i.e. what it restores from an unprotected copy.
        expect(await h!.restoreMismatches(staged, backup), backup.datetime).toEqual([]);
        const copies = (await h!.backupFiles(staged, backup)).filter((f) => !f.endsWith('.json'));
        expect(immutableAmong(copies), 'staged files carrying +i').toEqual([]);
      }
      expect(immutableAmong(files)).toHaveLength(files.length);
      console.log(
        `xo-compat ${kind}: ${chain.backups.length}/${chain.backups.length} locked backups restored by XO from a staged copy, ${files.length}/${files.length} originals still locked`,
      );
    });
  });

  it('encrypted remote: XO opens the staged copy with its key and restores the newest backup identically', async () => {
    const chain = await protectedChain('encrypted');
    const newest = chain.backups.at(-1)!;
    const staged = await stageAndOpen(chain, 'encrypted', newest);
    expect(await h!.restoreMismatches(staged, newest)).toEqual([]);
    const files = await filesOf(chain);
    expect(immutableAmong(files)).toHaveLength(files.length);
  });
});

// Issue 23: on an encrypted remote a VHD directory is paired with its backup by names only. One with no alias of its
// own name is the base of a merged chain (a newer alias has no directory of its own), an orphan, or being written.
describe.skipIf(h === undefined)('encrypted remote: VHD directories with no alias of their own name', () => {
  const open = async (remote: TestRemote): Promise<XoRemote> => {
    const xo = await h!.openRemote({ root: remote.root, ...KINDS.encrypted, retryEperm: false });
    stopBeforeCleanup(() => xo.close());
    return xo;
  };
  const settle = { config: { jsonSettleMs: 1_000 } };
  const waitLocked = async (xo: XoRemote, backup: WrittenBackup): Promise<string[]> => {
    const files = await h!.backupFiles(xo, backup);
    await waitFor(() => immutableAmong(files).length === files.length, `backup ${backup.datetime} to be locked`);
    return files;
  };

  it("an orphan directory is left unlocked and XO's cleanVm deletes it; the aliases stay locked", async () => {
    const harness = h!;
    const remote = await tempRemote();
    await startDaemon(remote, settle);
    const xo = await open(remote);
    const vm = harness.makeVm({ disks: [8 * harness.MiB] });
    const now = Date.now();
    const first = await harness.writeNightly(xo, vm, now - 3 * HOUR);
    await waitLocked(xo, first);
    // XO stops for good between a finished directory and its alias (xo-server killed): the directory is an orphan.
    const orphan = await new Promise<string>((resolve) => {
      void harness.writeNightly(xo, vm, now - 2 * HOUR, {
        beforeAlias: (dataPath) => {
          resolve(path.join(remote.root, dataPath));
          return new Promise<void>(() => undefined);
        },
      });
    });
    // The next night's backup, complete: on main the orphan went to it (the newest backup at or after its name).
    const last = await harness.writeNightly(xo, vm, now - HOUR);
    await waitLocked(xo, last);
    expect(isImmutable(orphan), 'the orphan directory is locked').toBe(false);
    // Deleting an alias cannot turn a locked directory into an orphan: the alias is locked with its backup.
    await expect(unlink(path.join(remote.root, last.disks[0]!.path))).rejects.toMatchObject({ code: 'EPERM' });
    const outcome = await harness.runRetention(xo, vm.uuid, []);
    expect(outcome.cleanError).toBeNull();
    expect(outcome.warnings.map((w) => w.message)).toContain('orphaned data file');
    expect(existsSync(orphan), 'the orphan directory is still there after cleanVm').toBe(false);
    await expectRestoresIdentically('encrypted', { remote, xo, vm, backups: [first, last] }, 'after cleanVm');
  });

  it('a directory XO is still writing is not locked before its alias, and is locked once its backup is complete', async () => {
    const harness = h!;
    const remote = await tempRemote();
    const xo = await open(remote);
    const vm = harness.makeVm({ disks: [8 * harness.MiB] });
    const now = Date.now();
    await harness.writeNightly(xo, vm, now - 3 * HOUR);
    const newer = await harness.writeNightly(xo, vm, now - HOUR);
    const newerFiles = await h!.backupFiles(xo, newer);
    // A backup named before `newer` arrives after it (a mirror keeps its source's datetime). Between its finished
    // directory and its alias, the daemon starts and locks what is complete, `newer` included.
    let lockedBeforeAlias: boolean | undefined;
    const late = await harness.writeNightly(xo, vm, now - 2 * HOUR, {
      full: true,
      beforeAlias: async (dataPath) => {
        const { daemon } = await startDaemon(remote, settle);
        await waitFor(() => immutableAmong(newerFiles).length === newerFiles.length, 'the newer backup to be locked');
        lockedBeforeAlias = isImmutable(path.join(remote.root, dataPath));
        await daemon.stop();
      },
    });
    expect(lockedBeforeAlias, 'the directory was locked before XO wrote its alias').toBe(false);
    await startDaemon(remote, settle);
    await waitLocked(xo, late);
    expect(await harness.restoreMismatches(xo, late)).toEqual([]);
  });

  it('a merged base (its own alias gone, a newer alias pointing at it) is locked with the backups built on it', async () => {
    const harness = h!;
    const remote = await tempRemote();
    const xo = await open(remote);
    const vm = harness.makeVm({ disks: [8 * harness.MiB] });
    const now = Date.now();
    const backups = await harness.writeChain(xo, vm, [now - 4 * HOUR, now - 3 * HOUR, now - 2 * HOUR, now - HOUR]);
    // XO's retention on the oldest: its delta child is merged into the base directory, which keeps the oldest name.
    const { outcome } = await harness.pruneOldestBackup(xo, vm.uuid);
    expect(outcome.cleanError).toBeNull();
    const base = path.join(path.dirname(path.join(remote.root, backups[1]!.disks[0]!.path)), 'data');
    expect(existsSync(path.join(base, `${backups[0]!.datetime}.vhd`)), 'the merged base keeps its name').toBe(true);
    expect(existsSync(path.join(base, `${backups[1]!.datetime}.vhd`)), "the merge target's directory").toBe(false);
    await startDaemon(remote, settle);
    for (const backup of backups.slice(1)) await waitLocked(xo, backup);
    expect(isImmutable(path.join(base, `${backups[0]!.datetime}.vhd`))).toBe(true);
    await expectRestoresIdentically('encrypted', { remote, xo, vm, backups: backups.slice(1) }, 'after a merge');
  });
});
