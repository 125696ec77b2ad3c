import { execFileSync, spawnSync } from 'node:child_process';
import { appendFile, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeConfigBackup, writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { openRemoteContext } from '../../src/context/open.js';
import { compareIdentity, verifyRemote } from '../../src/verify/verify.js';
import { DAY, startDaemon } from '../support/daemon.js';
import { tempRemote, writeConfigFile } from '../support/remote.js';
import { indexAsLocked } from '../support/index-entry.js';
import { writeVhdChain } from '../support/vhd-chain.js';

const BIN = path.resolve('bin/xo-immutable-backups.js');

interface Verified {
  ok: boolean;
  remotes: { entriesChecked: number; findings: { kind: string; path: string; detail: string }[] }[];
}

function verify(config: string): { status: number | null; report: Verified; stdout: string } {
  const result = spawnSync(process.execPath, [BIN, 'verify', '--config', config, '--json'], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { status: result.status, report: JSON.parse(result.stdout) as Verified, stdout: result.stdout };
}

describe('xo-immutable-backups verify', () => {
  it('passes on an untouched remote, and names each unit lifted and changed, deleted, or never locked', async () => {
    const remote = await tempRemote();
    const config = await writeConfigFile(remote);
    const vm = await writeVmBackup(remote.root, {
      vm: 'vm',
      datetime: xoDatetime(Date.now() - 3600_000),
      disks: [{ type: 'flat' }, { type: 'vhd-directory' }],
    });
    const cfg = await writeConfigBackup(remote.root, 's', xoDatetime(Date.now() - 3600_000));
    const { daemon } = await startDaemon(remote);
    await daemon.stop();

    const clean = verify(config);
    expect(clean.status).toBe(0);
    expect(clean.report.ok).toBe(true);
    expect(clean.report.remotes[0]?.entriesChecked).toBe(5);

    const disk = vm.units.find((u) => u.endsWith('.vhd') && !u.includes('/data/'))!;
    execFileSync('chattr', ['-i', disk]);
    await appendFile(disk, 'tampered');
    const alias = vm.units.find((u) => u.endsWith('.alias.vhd'))!;
    execFileSync('chattr', ['-i', alias]);
    await rm(alias);
    // Written while the daemon was stopped: a completed backup inside its window, never locked.
    const late = await writeVmBackup(remote.root, { vm: 'vm-late', datetime: xoDatetime(Date.now()) });
    // A block inside a locked VHD directory, unlocked and changed by hand.
    const vhdDirectory = vm.units.find((u) => u.includes('/data/'))!;
    const block = path.join(vhdDirectory, 'blocks', '0', '1');
    execFileSync('chattr', ['-i', block]);
    await appendFile(block, 'tampered');
    // A disk the daemon refuses: a symbolic link.
    const linked = await writeVmBackup(remote.root, { vm: 'vm-linked', datetime: xoDatetime(Date.now()) });
    const linkedDisk = linked.units.find((u) => u.endsWith('.vhd'))!;
    await rm(linkedDisk);
    await symlink(path.join(remote.base, 'elsewhere'), linkedDisk);

    const found = verify(config);
    expect(found.status).toBe(1);
    const findings = found.report.remotes[0]!.findings;
    expect(
      findings
        .filter((f) => f.kind !== 'unprotected' && f.kind !== 'unrestorable')
        .map((f) => [f.kind, f.path])
        .sort(),
    ).toEqual(
      [
        ['missing', alias],
        ['not-immutable', disk],
        ['not-immutable', vhdDirectory],
        ['refused', linkedDisk],
      ].sort(),
    );
    for (const unit of late.units)
      expect(
        findings.some((f) => f.kind === 'unprotected' && f.path === unit),
        unit,
      ).toBe(true);
    expect(findings.some((f) => f.path === cfg.label)).toBe(false);
    // Whole backups: the one missing its alias, and the two never locked.
    expect(
      findings
        .filter((f) => f.kind === 'unrestorable')
        .map((f) => [f.path, f.detail.split(': ').at(-1)])
        .sort(),
    ).toEqual(
      [
        [vm.label, 'unit-missing'],
        [late.label, 'unit-unlocked'],
        [linked.label, 'unit-unlocked'],
      ].sort(),
    );
  });

  it('checks whole chains: deltas on a base past its lock are findings, though every indexed unit is fine', async () => {
    const remote = await tempRemote();
    const config = await writeConfigFile(remote);
    const settings = JSON.parse(await readFile(config, 'utf8')) as object;
    await writeFile(config, JSON.stringify({ ...settings, protectChains: false }));
    const now = Date.now();
    const chain = await writeVhdChain(
      remote.root,
      'vm',
      'vdi',
      [10, 3, 1].map((days) => xoDatetime(now - days * DAY)),
    );
    const { daemon } = await startDaemon(remote, { config: { protectChains: false }, watch: false });
    await daemon.stop();
    const found = verify(config);
    expect(found.status).toBe(1);
    expect(found.report.remotes[0]!.findings.map((f) => [f.kind, f.path, f.detail.split(': ').at(-1)])).toEqual([
      ['unrestorable', chain[1]!.json, 'base-expired'],
      ['unrestorable', chain[2]!.json, 'base-expired'],
    ]);

    // With the chain protected, nothing to say.
    await writeFile(config, JSON.stringify(settings));
    const { daemon: again } = await startDaemon(remote, { watch: false });
    await again.stop();
    // The units the deltas had locked are locked again under the newest backup: no stale entry makes a finding.
    const after = verify(config);
    expect(after.report.remotes[0]!.findings).toEqual([]);
    expect(after.status).toBe(0);
  });

  it('names a backup indexed as locked whose flags are off, though every identity matches', async () => {
    const remote = await tempRemote();
    const config = await writeConfigFile(remote);
    const [never] = await writeVhdChain(remote.root, 'vm', 'vdi', [xoDatetime(Date.now() - DAY)]);
    const instant = Date.now() - DAY;
    for (const unit of [never!.json, never!.alias, never!.directory])
      await indexAsLocked(remote.indexPath, unit, { json: never!.json, instant });
    const found = verify(config);
    expect(found.status).toBe(1);
    const kinds = found.report.remotes[0]!.findings.map((f) => [f.kind, f.path, f.detail.split(': ').at(-1)]);
    expect(kinds).toContainEqual([
      'not-immutable',
      never!.directory,
      'indexed as locked, but the immutable attribute is not set',
    ]);
    expect(kinds).toContainEqual(['unrestorable', never!.json, 'unit-unlocked']);
  });

  it('lists a locked directory only up to a cap, and says what it did not check', async () => {
    const remote = await tempRemote();
    const vm = await writeVmBackup(remote.root, {
      datetime: xoDatetime(Date.now() - 3600_000),
      disks: [{ type: 'vhd-directory' }],
    });
    const { daemon } = await startDaemon(remote);
    await daemon.stop();
    const vhdDirectory = vm.units.find((u) => u.includes('/data/'))!;
    const context = await openRemoteContext(
      { id: 'r', root: remote.root, immutabilityDurationMs: 7 * DAY, rebuildIndexOnStart: false },
      remote.indexPath,
    );
    const options = { now: Date.now(), jsonSettleMs: 5_000 };
    const attributes = new IoctlAdapter();
    expect((await verifyRemote(context, attributes, options)).findings).toEqual([]);
    const capped = await verifyRemote(context, attributes, { ...options, maxTreeEntries: 2 });
    expect(capped.findings.map((f) => [f.kind, f.path])).toEqual([['unchecked', vhdDirectory]]);
    expect(capped.findings[0]!.detail).toMatch(/more than 2 entries/);
  });

  it('calls any ctime change a change, and a new device number alone something else', () => {
    const recorded = { dev: '1', ino: '2', size: '3', mtimeNs: '4', ctimeNs: '5', birthtimeNs: '6' };
    expect(compareIdentity(recorded, { ...recorded })).toEqual({ changed: [], deviceChanged: false });
    expect(compareIdentity(recorded, { ...recorded, ctimeNs: '7' }).changed).toEqual(['ctimeNs 5 -> 7']);
    expect(compareIdentity(recorded, { ...recorded, dev: '9' })).toEqual({ changed: [], deviceChanged: true });
  });
});
