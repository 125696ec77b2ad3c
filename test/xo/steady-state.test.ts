import { lstat, mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { DAY, startDaemon, type LogLine } from '../support/daemon.js';
import { immutableAmong, stopBeforeCleanup, tempFolder, tempRemote, waitFor } from '../support/remote.js';
import { attackRemote } from './attacker.js';
import type { Vm, WrittenBackup, XoRemote } from './harness.mjs';
import { missingForXo } from './requirements.js';
import type { ChainCost } from '../../src/status/chain-cost.js';

// Issue 24's steady state: weeks of XO's nightly job on a remote the daemon protects, against an unprotected twin
// that gets the same calls. Every night, for each VM: XO's writer (a full every `fullEvery` runs, a delta otherwise,
// a full whenever the previous disk cannot be a parent), XO's retention (deleteDeltaVmBackups on what is past
// `retention`) and cleanVm with merge and remove; the daemon runs through it under the same shifted clock, and its
// lift runs between two nights. At the end, someone holding XO's credentials destroys what they can, and XO restores
// every backup inside its window.
const missing = missingForXo();
if (missing !== undefined && process.env.CI !== undefined) throw new Error(`XO steady state: ${missing}`);
const h = missing === undefined ? await import('./harness.mjs') : undefined;

const HOUR = 3_600_000;
// What XO waits between its five retries of a call refused with EPERM (100+200+500+1000+2000 ms), which the soak
// skips (harness.mjs, retryEperm): each merge failure costs XO's job that much more at least.
const XO_EPERM_RETRIES_S = 3.8;

interface Kind {
  xo: { useVhdDirectory: boolean; encryptionKey?: string };
  // The daemon is given XO's key (encryptionKeyFile): the remote is read as a plain one.
  keyFile?: boolean;
  // The remote's own protectChains (undefined: on, the default).
  protectChains?: boolean;
  nights: number;
  vms: number;
  windowDays: number;
  retention: number;
  fullEvery: number;
  // Nights XO ran before the daemon was installed (an existing remote, as every installation but a new one).
  history: number;
  // XO cannot open a locked flat VHD: its backups are restored from a copy stage-restore makes.
  throughStage: boolean;
  // The most the remote may hold against the twin (issue 24's bar), where deltas stay deltas; flat: none (every
  // backup is a full there, docs/operations.md).
  maxStorage?: number;
  // Every in-window backup restores after the attack (not with protectChains false: a delta's base keeps only its
  // own window, docs/configuration.md).
  restoresAll?: false;
  // Chains claimed by name and never freed (encrypted, no key): what XO cannot remove grows night after night.
  grows?: true;
  maxMergeFailures?: number;
  // What status says is held beyond retention accounts for what the remote holds more than the twin (elsewhere the
  // difference has other causes: flat backups written as fulls, docs/operations.md).
  excessIsBeyondRetention?: true;
}

// XO's key for the encrypted kinds (the twin has it too); given to the daemon only where the kind says so.
const KEY = 'xo-steady-state-key-32-character';

const KINDS: Record<string, Kind> = {
  flat: {
    xo: { useVhdDirectory: false },
    nights: 12,
    vms: 2,
    windowDays: 2,
    retention: 5,
    fullEvery: 4,
    history: 3,
    throughStage: true,
  },
  // Issue 24's encrypted soak (window 2 days, retention 5, a full every 4), the daemon given the key.
  'encrypted with key file': {
    xo: { useVhdDirectory: true, encryptionKey: KEY },
    keyFile: true,
    nights: 12,
    vms: 2,
    windowDays: 2,
    retention: 5,
    fullEvery: 4,
    history: 0,
    throughStage: false,
    maxStorage: 1.5,
  },
  'vhd-directory': {
    xo: { useVhdDirectory: true },
    nights: 12,
    vms: 2,
    windowDays: 3,
    retention: 7,
    fullEvery: 7,
    history: 0,
    throughStage: false,
    maxStorage: 1.5,
  },
  // Storage grows without bound there: no maxStorage; status must say by how much (asserted below).
  'encrypted without key': {
    xo: { useVhdDirectory: true, encryptionKey: KEY },
    nights: 12,
    vms: 2,
    windowDays: 2,
    retention: 5,
    fullEvery: 4,
    history: 0,
    throughStage: false,
    grows: true,
    excessIsBeyondRetention: true,
  },
  // The second choice (docs/operations.md): chains off for this remote. Bounded, and weaker.
  'encrypted without key, protectChains false': {
    xo: { useVhdDirectory: true, encryptionKey: KEY },
    protectChains: false,
    nights: 9,
    vms: 2,
    windowDays: 2,
    retention: 5,
    fullEvery: 4,
    history: 0,
    throughStage: false,
    maxStorage: 1.5,
    restoresAll: false,
    maxMergeFailures: 0,
    excessIsBeyondRetention: true,
  },
};

interface Night {
  // backups XO lists (listVmBackups, all VMs) on the protected remote and on the twin
  listed: number;
  twinListed: number;
  // the listings differ (which backups, not only how many)
  differ: boolean;
  // <dt>.json files on disk
  jsons: number;
  twinJsons: number;
  bytes: number;
  twinBytes: number;
  // disks XO's retention left behind: <dt>.alias.vhd files with no <dt>.json in their VM folder
  leftovers: number;
  twinLeftovers: number;
}

interface Soak {
  nights: Night[];
  // cleanVm runs that rejected, on the protected remote and on the twin
  mergeFailures: number;
  twinMergeFailures: number;
  cleanRuns: number;
  // Time XO's retention and cleanVm took, summed over the runs, on the protected remote and on the twin.
  cleanMs: number;
  twinCleanMs: number;
  inWindow: number;
  restorable: number;
  failures: string[];
  destroyed: number;
  // What `status --json` said at the end, before the attack.
  chainCost: ChainCost | null;
}

async function soak(kind: Kind): Promise<Soak> {
  const harness = h!;
  const remote = await tempRemote();
  const twinRoot = path.join(await tempFolder(), 'twin');
  await mkdir(twinRoot);

  // Nightly at 01:00 UTC, the last night yesterday: names in the past, the daemon's clock moved to each night.
  const start = Math.floor(Date.now() / DAY) * DAY - kind.nights * DAY + HOUR;
  // The daemon's clock stands still while XO runs: between two nights it moves to the next one and the lift runs,
  // before XO's job, unlocking whatever expired by then (a window ends at the time of day its backup arrived); none
  // expires in the middle of a job (docs/xo-remote-layout.md says why a lift during cleanVm is a risk).
  let current = start;
  const setClock = (at: number): void => {
    current = at;
  };
  const clock = { now: () => current };
  const keyFile = path.join(remote.base, 'remote.key');
  if (kind.keyFile === true) await writeFile(keyFile, kind.xo.encryptionKey!, { mode: 0o600 });
  const withKey = kind.keyFile === true ? { encryptionKeyFile: keyFile } : {};
  const daemonConfig = {
    jsonSettleMs: 1_000,
    liftEveryMs: 100,
    remotes: [
      {
        id: 'r',
        root: remote.root,
        immutabilityDurationMs: kind.windowDays * DAY,
        rebuildIndexOnStart: false,
        ...withKey,
        ...(kind.protectChains === undefined ? {} : { protectChains: kind.protectChains }),
      },
    ],
  };
  let logs: LogLine[] | undefined;
  const open = async (root: string): Promise<XoRemote> => {
    const xo = await harness.openRemote({ root, ...kind.xo, retryEperm: false });
    stopBeforeCleanup(() => xo.close());
    return xo;
  };
  const xo = await open(remote.root);
  const twin = await open(twinRoot);
  const vms = Array.from({ length: kind.vms }, () => harness.makeVm({ disks: [8 * harness.MiB] }));
  const twinVms = vms.map((vm) => harness.twinOf(vm));
  const written: WrittenBackup[][] = vms.map(() => []);

  const out: Soak = {
    nights: [],
    mergeFailures: 0,
    twinMergeFailures: 0,
    cleanRuns: 0,
    cleanMs: 0,
    twinCleanMs: 0,
    inWindow: 0,
    restorable: 0,
    failures: [],
    destroyed: 0,
    chainCost: null,
  };
  for (let night = 0; night < kind.nights; night++) {
    const at = start + night * DAY;
    if (night === kind.history) {
      // Installed at noon, after the last night it did not see: the start-up catch-up locks what is in its window.
      setClock(at - 13 * HOUR);
      logs = (await startDaemon(remote, { clock, healthCheckEveryMs: 500, config: daemonConfig })).logs;
      await liftPasses(logs, 1);
    }
    setClock(at);
    if (logs !== undefined) await liftPasses(logs, 1);
    for (const [i, vm] of vms.entries()) {
      const full = night % kind.fullEvery === 0;
      const backup = await harness.writeNightly(xo, vm, at, { full });
      await harness.writeNightly(twin, twinVms[i]!, at, { full });
      written[i]!.push(backup);
      // Ciphertext is complete once unchanged for jsonSettleTime by the daemon's clock, which stands at the night:
      // the json is dated to the night it simulates, or it would stay newer than the clock and never settle.
      if (kind.xo.encryptionKey !== undefined && kind.keyFile !== true)
        await utimes(path.join(remote.root, backup.metadataPath), (at - 60_000) / 1000, (at - 60_000) / 1000);
      // Nights are hours apart: the daemon has locked the backup before XO's retention runs.
      const units = [backup.metadataPath, ...backup.disks.map((d) => d.path)].map((p) => path.join(remote.root, p));
      if (logs !== undefined)
        await waitFor(() => immutableAmong(units).length === units.length, `backup ${backup.datetime} to be locked`);
      for (const [side, target] of [
        [xo, vm],
        [twin, twinVms[i]!],
      ] as const) {
        const listed = await harness.listVmBackups(side, target.uuid);
        const old = listed.slice(0, Math.max(0, listed.length - kind.retention));
        const began = performance.now();
        const outcome = await harness.runRetention(side, target.uuid, old);
        if (side === xo) out.cleanMs += performance.now() - began;
        else out.twinCleanMs += performance.now() - began;
        if (side === xo) {
          out.cleanRuns++;
          if (outcome.cleanError !== null) out.mergeFailures++;
        } else if (outcome.cleanError !== null) out.twinMergeFailures++;
      }
    }
    out.nights.push(await observe(xo, twin, vms, twinRoot));
  }

  // The end: the clock stays at the last night. An attacker holding XO's credentials, then XO's restores.
  const now = start + (kind.nights - 1) * DAY;
  out.chainCost = await statusChainCost(remote, kind);
  out.destroyed = (await attackRemote(remote.root)).destroyed;
  const fresh = kind.throughStage ? undefined : await open(remote.root);
  for (const [i, vm] of vms.entries()) {
    for (const backup of written[i]!) {
      if (Date.parse(isoOf(backup.datetime)) + kind.windowDays * DAY <= now) continue;
      out.inWindow++;
      const from = fresh ?? (await stage(remote, vm, backup, kind));
      const mismatches = await harness.restoreMismatches(from, backup).catch((error: Error) => [error.message]);
      if (mismatches.length === 0) out.restorable++;
      else out.failures.push(`${backup.datetime}: ${mismatches.join(', ')}`);
    }
  }
  return out;
}

// What XO lists for every VM on both remotes, the jsons on their disks and the bytes they hold.
async function observe(xo: XoRemote, twin: XoRemote, vms: Vm[], twinRoot: string): Promise<Night> {
  let listed = 0;
  let twinListed = 0;
  let differ = false;
  for (const vm of vms) {
    const names = (await h!.listVmBackups(xo, vm.uuid)).map((b) => path.basename(b._filename)).sort();
    const twinNames = (await h!.listVmBackups(twin, vm.uuid)).map((b) => path.basename(b._filename)).sort();
    listed += names.length;
    twinListed += twinNames.length;
    differ ||= names.join() !== twinNames.join();
  }
  const mine = await usage(path.join(xo.root, 'xo-vm-backups'));
  const theirs = await usage(path.join(twinRoot, 'xo-vm-backups'));
  return {
    listed,
    twinListed,
    differ,
    jsons: mine.jsons,
    twinJsons: theirs.jsons,
    bytes: mine.bytes,
    twinBytes: theirs.bytes,
    leftovers: mine.leftovers,
    twinLeftovers: theirs.leftovers,
  };
}

async function usage(folder: string): Promise<{ jsons: number; bytes: number; leftovers: number }> {
  const total = { jsons: 0, bytes: 0, leftovers: 0 };
  const walk = async (at: string, depth: number, names: { jsons: Set<string>; aliases: string[] }): Promise<void> => {
    for (const entry of await readdir(at, { withFileTypes: true })) {
      const p = path.join(at, entry.name);
      if (entry.isDirectory()) await walk(p, depth + 1, names);
      else {
        total.bytes += (await lstat(p)).size;
        // a backup's metadata: <vm>/<dt>.json, not cache.json.gz nor XO's dot files
        if (depth === 1 && /^\d{8}T\d{6}Z\.json$/.test(entry.name)) {
          total.jsons++;
          names.jsons.add(entry.name.slice(0, -'.json'.length));
        }
        if (depth === 4 && /^\d{8}T\d{6}Z\.alias\.vhd$/.test(entry.name))
          names.aliases.push(entry.name.slice(0, -'.alias.vhd'.length));
      }
    }
    if (depth === 1) total.leftovers += names.aliases.filter((dt) => !names.jsons.has(dt)).length;
  };
  for (const vm of await readdir(folder, { withFileTypes: true }))
    if (vm.isDirectory()) await walk(path.join(folder, vm.name), 1, { jsons: new Set(), aliases: [] });
    else total.bytes += (await lstat(path.join(folder, vm.name))).size;
  return total;
}

// What `status --json` says the remote holds beyond XO's retention, as an admin runs it.
async function statusChainCost(remote: Awaited<ReturnType<typeof tempRemote>>, kind: Kind): Promise<ChainCost | null> {
  const config = path.join(remote.base, 'status-config.json');
  const own = kind.protectChains === undefined ? {} : { protectChains: kind.protectChains };
  const remotes = { r: { root: remote.root, immutabilityDuration: `${kind.windowDays}d`, ...own } };
  await writeFile(config, JSON.stringify({ indexPath: remote.indexPath, remotes }));
  const said: string[] = [];
  await main(['status', '-c', config, '--json'], { out: (line) => said.push(line), err: () => undefined });
  return (JSON.parse(said.join('\n')) as { remotes: { chainCost: ChainCost | null }[] }).remotes[0]!.chainCost;
}

// Waits for `count` lift passes that began after now (a pass in flight may have read the clock before it moved).
async function liftPasses(logs: LogLine[], count: number): Promise<void> {
  const from = logs.length;
  const isPass = (l: LogLine): boolean =>
    l.module === 'lift' && (l.msg.startsWith('lift pass: nothing expired') || l.msg.startsWith('lifted '));
  await waitFor(() => logs.slice(from).filter(isPass).length >= count + 1, 'lift passes');
}

// stage-restore as an admin runs it: the backup and what it is built on copied out, then opened by XO.
async function stage(
  remote: Awaited<ReturnType<typeof tempRemote>>,
  vm: Vm,
  backup: WrittenBackup,
  kind: Kind,
): Promise<XoRemote> {
  const to = path.join(await tempFolder(), 'staged');
  const config = path.join(remote.base, 'stage-config.json');
  const remotes = { r: { root: remote.root, immutabilityDuration: `${kind.windowDays}d` } };
  await writeFile(config, JSON.stringify({ indexPath: remote.indexPath, jsonSettleTime: '1s', remotes }));
  const said: string[] = [];
  const io = { out: (line: string) => said.push(line), err: (line: string) => said.push(line) };
  const code = await main(
    [
      'stage-restore',
      '-c',
      config,
      '--remote',
      'r',
      '--vm',
      vm.uuid,
      '--backup',
      backup.datetime,
      '--to',
      to,
      '--json',
    ],
    io,
  );
  if (code !== 0) throw new Error(`stage-restore exited ${code}: ${said.join('\n')}`);
  const staged = await h!.openRemote({ root: to, useVhdDirectory: false });
  stopBeforeCleanup(() => staged.close());
  return staged;
}

function isoOf(datetime: string): string {
  return `${datetime.slice(0, 4)}-${datetime.slice(4, 6)}-${datetime.slice(6, 8)}T${datetime.slice(9, 11)}:${datetime.slice(11, 13)}:${datetime.slice(13, 15)}Z`;
}

function summary(name: string, kind: Kind, s: Soak): string {
  const ratio = (n: Night): number => n.bytes / n.twinBytes;
  const end = s.nights.at(-1)!;
  const max = Math.max(...s.nights.map(ratio));
  const same = s.nights.filter((n) => !n.differ).length;
  const jsonsAsTwin = s.nights.filter((n) => n.jsons === n.twinJsons).length;
  return (
    `xo-steady ${name} (${kind.nights} nights, ${kind.vms} VMs, window ${kind.windowDays}d, retention ${kind.retention}, ` +
    `a full every ${kind.fullEvery}, installed after ${kind.history}): ${s.restorable}/${s.inWindow} in-window backups restorable after the attack; ` +
    `storage ${ratio(end).toFixed(2)}x the twin's at the end, ${max.toFixed(2)}x at most; ` +
    `XO listed the same backups as on the twin ${same}/${s.nights.length} nights ` +
    `(${end.listed} against ${end.twinListed} at the end), as many jsons on disk ${jsonsAsTwin}/${s.nights.length} nights; ` +
    `merge failures ${s.mergeFailures}/${s.cleanRuns} cleanVm runs (twin ${s.twinMergeFailures}); ` +
    `retention and cleanVm ${(s.cleanMs / s.cleanRuns / 1000).toFixed(2)} s a run against ` +
    `${(s.twinCleanMs / s.cleanRuns / 1000).toFixed(2)} s on the twin, XO's retries of EPERM skipped ` +
    `(${XO_EPERM_RETRIES_S} s each: ${((s.mergeFailures * XO_EPERM_RETRIES_S) / s.cleanRuns).toFixed(2)} s a run more)` +
    (s.chainCost === null ? '' : `; ${costSummary(s.chainCost, end)}`)
  );
}

const KIB = 1024;

// What status said the remote holds beyond XO's retention, against what the disks show.
function costSummary(cost: ChainCost, end: Night): string {
  const { backups, bytes } = cost.beyondRetention;
  return (
    `status: ${backups} backups beyond retention, ${(bytes / KIB).toFixed(1)} KiB, ` +
    `${cost.unfreedVdis.length} VDI folders never freed; measured: ${end.leftovers} leftover disks ` +
    `(twin ${end.twinLeftovers}), ${((end.bytes - end.twinBytes) / KIB).toFixed(1)} KiB more than the twin`
  );
}

describe.skipIf(h === undefined)("weeks of XO's nightly job on a protected remote, against an unprotected twin", () => {
  it.each(Object.keys(KINDS))(
    '%s remote',
    async (name) => {
      const kind = KINDS[name]!;
      const s = await soak(kind);
      console.log(summary(name, kind, s));
      const perNight = s.nights.map(
        (n, i) => `night ${i}: listed ${n.listed}/${n.twinListed}, jsons on disk ${n.jsons}/${n.twinJsons}`,
      );
      expect(
        s.nights.flatMap((n, i) => (n.differ ? [i] : [])),
        `nights XO listed other backups than on the twin (protected/twin):\n${perNight.join('\n')}`,
      ).toEqual([]);
      expect(
        s.nights.flatMap((n, i) => (n.jsons < n.twinJsons ? [i] : [])),
        `nights with fewer jsons on disk than on the twin:\n${perNight.join('\n')}`,
      ).toEqual([]);
      if (kind.maxStorage !== undefined)
        expect(Math.max(...s.nights.map((n) => n.bytes / n.twinBytes)), 'storage against the twin').toBeLessThanOrEqual(
          kind.maxStorage,
        );
      if (kind.maxStorage !== undefined) {
        // Not growing over the last week: no more against the twin than one full-backup cycle before.
        const ratios = s.nights.map((n) => n.bytes / n.twinBytes);
        const shown = `storage against the twin, by night: ${ratios.map((r) => r.toFixed(2)).join(' ')}`;
        expect(ratios.at(-1), shown).toBeLessThanOrEqual(ratios.at(-1 - kind.fullEvery)! + 0.05);
      }
      expect(s.destroyed, 'files the attacker destroyed').toBeGreaterThan(0);
      if (kind.restoresAll !== false) expect(s.failures, 'in-window backups XO could not restore').toEqual([]);
      expect(s.inWindow).toBe(kind.vms * kind.windowDays);
      // status says what the remote holds beyond XO's retention: the disks XO's retention left behind, and about
      // the bytes the remote holds more than the twin (docs/operations.md says how close, and why not exact).
      const end = s.nights.at(-1)!;
      expect(s.chainCost?.beyondRetention.backups, 'leftover backups, status against the disks').toBe(
        end.leftovers, // one disk per VM
      );
      if (kind.grows === true)
        expect(end.leftovers, 'leftover disks, against four nights before').toBeGreaterThan(s.nights.at(-5)!.leftovers);
      if (kind.maxMergeFailures !== undefined) expect(s.mergeFailures).toBeLessThanOrEqual(kind.maxMergeFailures);
      const excess = end.bytes - end.twinBytes;
      const said = s.chainCost?.beyondRetention.bytes ?? 0;
      if (kind.excessIsBeyondRetention === true)
        expect(Math.abs(said - excess), `status's ${said} bytes against ${excess} measured`).toBeLessThanOrEqual(
          Math.max(0.25 * excess, 0.05 * end.twinBytes),
        );
    },
    240_000,
  );
});
