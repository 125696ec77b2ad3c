import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { lstat, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { xoDatetime } from '../../src/demo/sample-remote.js';
import type { ChainCost } from '../../src/status/chain-cost.js';
import { DAY, startDaemon } from '../support/daemon.js';
import { tempRemote, waitFor } from '../support/remote.js';
import { JOB, writeVhdChain } from '../support/vhd-chain.js';

const BIN = path.resolve('bin/xo-immutable-backups.js');
const validate = new Ajv({ allErrors: true, strict: false, validateFormats: false }).compile(
  JSON.parse(readFileSync('docs/status.schema.json', 'utf8')) as object,
);

function cli(args: string[]): string {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000 }).stdout;
}

// The sizes of every file below a path, as du --apparent-size counts them.
async function bytesOf(at: string): Promise<number> {
  const stats = await lstat(at);
  if (!stats.isDirectory()) return stats.size;
  let total = 0;
  for (const name of await readdir(at)) total += await bytesOf(path.join(at, name));
  return total;
}

// An encrypted remote (the daemon has no key): a full 10 days ago, deltas 3 days and 1 day ago, window 7 days. XO's
// retention has removed the full (its json is gone); its alias and VHD directory wait for cleanVm.
async function encryptedAfterRetention(protectChains: boolean) {
  const remote = await tempRemote();
  await writeFile(path.join(remote.root, 'encryption.json'), '{"algorithm":"chacha20-poly1305"}');
  await writeFile(path.join(remote.root, 'metadata.json'), 'ciphertext');
  const now = Date.now();
  const chain = await writeVhdChain(
    remote.root,
    'vm-1',
    'vdi-1',
    [10, 3, 1].map((days) => xoDatetime(now - days * DAY)),
  );
  await rm(chain[0]!.json);
  const metricsFile = path.join(remote.base, 'metrics.prom');
  const remotes = [
    { id: 'r', root: remote.root, immutabilityDurationMs: 7 * DAY, rebuildIndexOnStart: false, protectChains },
  ];
  await startDaemon(remote, { config: { metricsFile, jsonSettleMs: 300, remotes }, healthCheckEveryMs: 100 });
  const config = path.join(remote.base, 'config.json');
  await writeFile(
    config,
    JSON.stringify({
      indexPath: remote.indexPath,
      remotes: { r: { root: remote.root, immutabilityDuration: '7d', protectChains } },
    }),
  );
  await waitFor(
    async () => (await readFile(metricsFile, 'utf8').catch(() => '')).includes('beyond_retention_backups'),
    'the daemon to count what is beyond retention',
  );
  return { remote, chain, config, metrics: await readFile(metricsFile, 'utf8') };
}

function chainCostOf(config: string): ChainCost {
  const report = JSON.parse(cli(['status', '--config', config, '--json'])) as { remotes: { chainCost: ChainCost }[] };
  expect(validate(report), JSON.stringify(validate.errors)).toBe(true);
  return report.remotes[0]!.chainCost;
}

describe('an encrypted remote without its key: the cost said plainly', () => {
  it('protectChains on: the full XO removed stays locked, and status, check and the metrics say so', async () => {
    const { chain, config, metrics } = await encryptedAfterRetention(true);
    const full = chain[0]!;
    // XO's cleanVm cannot remove it: the newest backup's chain, claimed by name, holds it.
    await expect(unlink(full.alias)).rejects.toMatchObject({ code: 'EPERM' });
    const bytes = (await bytesOf(full.alias)) + (await bytesOf(full.directory));
    const vdi = `vdis/${JOB}/vdi-1`;
    expect(chainCostOf(config)).toEqual({
      chainsByName: true,
      beyondRetention: { backups: 1, units: 2, bytes },
      unfreedVdis: [{ vm: 'vm-1', vdi, pastOwnWindow: 2, leftoverBackups: 1, leftoverBytes: bytes }],
    });
    expect(metrics).toContain('xo_immutable_backups_beyond_retention_backups{remote="r"} 1');
    expect(metrics).toContain(`xo_immutable_backups_beyond_retention_bytes{remote="r"} ${bytes}`);
    expect(metrics).toContain('xo_immutable_backups_unfreed_vdi_folders{remote="r"} 1');
    expect(metrics).toContain(
      `xo_immutable_backups_unfreed_vdi_leftover_bytes{remote="r",vm="vm-1",vdi="${vdi}"} ${bytes}`,
    );
    const status = cli(['status', '--config', config]);
    expect(status).toContain('CHAINS NEVER FREED: 1 VDI folder(s)');
    expect(status).toContain("beyond XO's retention: 1 backup(s) its merges could not remove");
    const check = cli(['check', '--config', config]);
    expect(check).toMatch(/remote r: beyond XO's retention: WARNING: encrypted remote read without its key: 1 VDI/);
    expect(check).toContain(`vm-1/${vdi} (1 removed backup(s)`);
  });

  it("the remote's own protectChains false: nothing held beyond retention, XO removes the full", async () => {
    const { chain, config, metrics } = await encryptedAfterRetention(false);
    expect(chainCostOf(config)).toEqual({
      chainsByName: false,
      beyondRetention: { backups: 0, units: 0, bytes: 0 },
      unfreedVdis: [],
    });
    expect(metrics).toContain('xo_immutable_backups_beyond_retention_backups{remote="r"} 0');
    expect(metrics).toContain('xo_immutable_backups_unfreed_vdi_folders{remote="r"} 0');
    await unlink(chain[0]!.alias);
  });
});
