import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { xoDatetime } from '../../src/demo/sample-remote.js';
import { parseBackupDatetime } from '../../src/remote/datetime.js';
import { windowMsOf } from '../../src/remote/model.js';
import type { RestorePoints } from '../../src/status/restore-points.js';
import { DAY, startDaemon } from '../support/daemon.js';
import { allImmutable, tempRemote, writeConfigFile, type TestRemote } from '../support/remote.js';
import { indexAsLocked } from '../support/index-entry.js';
import { writeVhdChain, type ChainBackup } from '../support/vhd-chain.js';

const BIN = path.resolve('bin/xo-immutable-backups.js');
const schema = JSON.parse(readFileSync('docs/status.schema.json', 'utf8')) as object;
const validate = new Ajv({ allErrors: true, strict: false, validateFormats: false }).compile(schema);

function statusJson(config: string): { remotes: { restorePoints: RestorePoints; xoSettings: unknown }[] } {
  const result = spawnSync(process.execPath, [BIN, 'status', '--config', config, '--json'], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  const report = JSON.parse(result.stdout) as { remotes: { restorePoints: RestorePoints; xoSettings: unknown }[] };
  expect(validate(report), JSON.stringify(validate.errors)).toBe(true);
  return report;
}

function restorePoints(config: string): RestorePoints {
  return statusJson(config).remotes[0]!.restorePoints;
}

// A full 10 days ago (outside the 7-day window) and deltas 3 days and 1 day ago, locked by the real daemon, which is
// then stopped so that nothing locks again behind the test's back.
async function lockedChain(
  protectChains: boolean,
  remoteProtectChains?: boolean,
): Promise<{ remote: TestRemote; config: string; chain: ChainBackup[] }> {
  const remote = await tempRemote();
  const now = Date.now();
  const chain = await writeVhdChain(
    remote.root,
    'vm-1',
    'vdi-1',
    [10, 3, 1].map((days) => xoDatetime(now - days * DAY)),
  );
  const own = remoteProtectChains === undefined ? {} : { protectChains: remoteProtectChains };
  const remotes = [{ id: 'r', root: remote.root, immutabilityDurationMs: 7 * DAY, rebuildIndexOnStart: false, ...own }];
  const { daemon } = await startDaemon(remote, { config: { protectChains, remotes }, watch: false });
  await daemon.stop();
  return { remote, config: await writeConfigFile(remote), chain };
}

describe('status: restore points inside the window', () => {
  it('a locked chain: every restore point protected, until the newest leaves its window', async () => {
    const { config, chain } = await lockedChain(true);
    expect(allImmutable([chain[0]!.directory, chain[0]!.alias])).toBe(true);
    const points = restorePoints(config);
    expect(points).toMatchObject({ inWindow: 2, protected: 2, unprotected: 0 });
    expect(points.vms).toEqual([
      {
        vm: 'vm-1',
        inWindow: 2,
        protected: 2,
        protectedUntil: new Date(parseBackupDatetime(chain[2]!.datetime)! + windowMsOf(7 * DAY)).toISOString(),
        unprotected: [],
      },
    ]);
  });

  it('the chain has no full inside the window: status and check name the VM and the XO setting', async () => {
    const { config } = await lockedChain(true);
    const advice = statusJson(config).remotes[0]!.xoSettings as { vm: string; problem: string; set: string }[];
    expect(advice.map((a) => [a.vm, a.problem])).toEqual([['vm-1', 'chain-never-freed']]);
    expect(advice[0]?.set).toContain('Full backup interval');
    const human = spawnSync(process.execPath, [BIN, 'status', '--config', config], { encoding: 'utf8' }).stdout;
    expect(human).toContain('vm-1 no full inside the window: set a full backup interval');
    const check = spawnSync(process.execPath, [BIN, 'check', '--config', config], { encoding: 'utf8' }).stdout;
    expect(check).toMatch(/remote r: XO settings: WARNING: VM vm-1: no full backup inside the 7-day window/);
  });

  it('the base unlocked by hand: both deltas unprotected, unit-unlocked', async () => {
    const { config, chain } = await lockedChain(true);
    execFileSync('chattr', ['-R', '-i', '--', chain[0]!.directory]);
    const points = restorePoints(config);
    expect(points).toMatchObject({ inWindow: 2, protected: 0, unprotected: 2 });
    expect(points.vms[0]?.unprotected).toEqual([
      { backup: `${chain[1]!.datetime}.json`, reason: 'unit-unlocked' },
      { backup: `${chain[2]!.datetime}.json`, reason: 'unit-unlocked' },
    ]);
  });

  it.each([
    ['protectChains false', false, undefined],
    ["the remote's own protectChains false under a top-level true", true, false],
  ])('%s: the expired full leaves both deltas unprotected, base-expired', async (_, top, own) => {
    const { config, chain } = await lockedChain(top, own);
    expect(allImmutable([chain[0]!.directory])).toBe(false);
    expect(allImmutable([chain[1]!.directory, chain[2]!.directory])).toBe(true);
    const points = restorePoints(config);
    expect(points).toMatchObject({ inWindow: 2, protected: 0, unprotected: 2 });
    expect(points.vms[0]?.unprotected.map((u) => u.reason)).toEqual(['base-expired', 'base-expired']);
  });

  it('a backup indexed as locked whose flags were never set: unprotected, unit-unlocked', async () => {
    const { remote, config } = await lockedChain(true);
    // Written after the daemon stopped, so never locked; its entries, written by hand, match its units exactly.
    const [never] = await writeVhdChain(remote.root, 'vm-2', 'vdi-2', [xoDatetime(Date.now() - DAY)]);
    const instant = parseBackupDatetime(never!.datetime)!;
    for (const unit of [never!.json, never!.alias, never!.directory])
      await indexAsLocked(remote.indexPath, unit, { json: never!.json, instant });
    const points = restorePoints(config);
    expect(points).toMatchObject({ inWindow: 3, protected: 2, unprotected: 1 });
    expect(points.vms.find((vm) => vm.vm === 'vm-2')?.unprotected).toEqual([
      { backup: `${never!.datetime}.json`, reason: 'unit-unlocked' },
    ]);
  });

  it('a unit deleted: unit-missing, and the human output names it', async () => {
    const { config, chain } = await lockedChain(true);
    execFileSync('chattr', ['-R', '-i', '--', chain[0]!.directory, chain[0]!.alias]);
    await rm(chain[0]!.directory, { recursive: true });
    await rm(chain[0]!.alias);
    const points = restorePoints(config);
    expect(points.vms[0]?.unprotected.map((u) => u.reason)).toEqual(['unit-missing', 'unit-missing']);
    const human = spawnSync(process.execPath, [BIN, 'status', '--config', config], { encoding: 'utf8' }).stdout;
    expect(human).toContain('restore points in the window: 2, 0 protected, 2 NOT');
    expect(human).toContain(`vm-1 ${chain[1]!.datetime}.json: a unit is missing`);
  });
});
