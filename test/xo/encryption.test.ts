import { chmod, chown, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readVmSnapshot } from '../../src/backup/snapshot.js';
import { main } from '../../src/cli/main.js';
import { restorePointOf, unitsOf, backupsOf } from '../../src/backup/vm.js';
import { AppError } from '../../src/errors.js';
import { decryptorFor, readingOf } from '../../src/remote/encryption.js';
import { withHeldRemote } from '../../src/remote/held.js';
import { DAY, startDaemon } from '../support/daemon.js';
import { immutableAmong, stopBeforeCleanup, tempFolder, tempRemote, waitFor } from '../support/remote.js';
import { missingForXo } from './requirements.js';

// Issue 24: an encrypted remote read with the key the admin gave XO, on files XO's own code wrote.
const missing = missingForXo();
if (missing !== undefined && process.env.CI !== undefined) throw new Error(`XO encryption: ${missing}`);
const h = missing === undefined ? await import('./harness.mjs') : undefined;

const KEY = 'xo-key-file-suite-key-32-chars!!';
const HOUR = 3_600_000;

async function keyFile(content: string, mode = 0o600): Promise<string> {
  const file = path.join(await tempFolder(), 'remote.key');
  await writeFile(file, content, { mode });
  await chmod(file, mode);
  return file;
}

// A remote XO set up with KEY, holding one VM's full and two deltas as VHD directories.
async function encryptedRemote() {
  const remote = await tempRemote();
  const xo = await h!.openRemote({ root: remote.root, useVhdDirectory: true, encryptionKey: KEY });
  stopBeforeCleanup(() => xo.close());
  const vm = h!.makeVm({ disks: [4 * h!.MiB] });
  const now = Date.now();
  const backups = await h!.writeChain(xo, vm, [now - 3 * HOUR, now - 2 * HOUR, now - HOUR]);
  return { remote, xo, vm, backups, root: { root: remote.root, realRoot: remote.root } };
}

async function refusalOf(act: () => Promise<unknown>): Promise<AppError> {
  const error = await act().then(
    () => undefined,
    (e: unknown) => e,
  );
  if (error instanceof AppError) return error;
  throw new Error(`not refused with an AppError: ${String(error)}`);
}

// A plain remote beside an encrypted one read with `keyFile`, both with a one-day window.
function plainAndEncrypted(plain: string, encrypted: string, keyFile: string) {
  const remote = { immutabilityDurationMs: DAY, rebuildIndexOnStart: false };
  return [
    { id: 'plain', root: plain, ...remote },
    { id: 'enc', root: encrypted, ...remote, encryptionKeyFile: keyFile },
  ];
}

describe.skipIf(h === undefined)('an encrypted remote read with its key file', () => {
  it("decrypts XO's canary, jsons, aliases and VHD headers: every backup's chain is read as on a plain remote", async () => {
    const { remote, xo, vm, backups, root } = await encryptedRemote();
    const ciphertext = await readFile(path.join(remote.root, backups[2]!.metadataPath));
    expect(() => JSON.parse(ciphertext.toString()) as unknown, 'the json on disk is ciphertext').toThrow();

    const reading = await readingOf({ id: 'r', encryptionKeyFile: await keyFile(`${KEY}\n`) }, root);
    expect(reading.encrypted).toBe(false);
    const snapshot = await withHeldRemote({ ...root, ...reading }, (held) =>
      readVmSnapshot(held, vm.uuid, reading.encrypted),
    );
    const found = backupsOf(snapshot);
    expect(found.map((b) => b.datetime)).toEqual(backups.map((b) => b.datetime));
    const newest = found.at(-1)!;
    const units = unitsOf(snapshot, newest);
    expect(units.chainKnown, 'the newest delta chain is read to its base').toBe(true);
    // What XO reads to restore the newest backup: its own files and both older disks (alias and data directory).
    const needed = (await h!.restoreFiles(xo, backups, 2)).map((f) =>
      path.relative(path.join(remote.root, `xo-vm-backups/${vm.uuid}`), f),
    );
    const point = restorePointOf(snapshot, newest, units);
    const claimed = [...point.own, ...point.chain];
    for (const file of needed.filter((f) => f.startsWith('vdis/')))
      expect(
        claimed.some((unit) => file === unit || file.startsWith(`${unit}/`)),
        `${file} is claimed`,
      ).toBe(true);
    expect(point.chain.filter((u) => u.endsWith('.alias.vhd'))).toHaveLength(2);
  });

  it('stage-restore with the key file copies the chain it read, as ciphertext XO opens with its key', async () => {
    const { remote, vm, backups } = await encryptedRemote();
    const newest = backups.at(-1)!;
    const to = path.join(await tempFolder(), 'staged');
    const config = path.join(remote.base, 'config.json');
    const encryptionKeyFile = await keyFile(KEY);
    const remotes = { r: { root: remote.root, immutabilityDuration: '7d', encryptionKeyFile } };
    await writeFile(config, JSON.stringify({ indexPath: remote.indexPath, remotes }));
    const said: string[] = [];
    const io = { out: (line: string) => said.push(line), err: (line: string) => said.push(line) };
    const args = ['--remote', 'r', '--vm', vm.uuid, '--backup', newest.datetime, '--to', to];
    expect(await main(['stage-restore', '-c', config, ...args], io), said.join('\n')).toBe(0);
    expect(said.join('\n')).toContain('ciphertext copied as is');
    expect(said.join('\n')).not.toContain(KEY);
    const staged = await h!.openRemote({ root: to, useVhdDirectory: true, encryptionKey: KEY });
    stopBeforeCleanup(() => staged.close());
    expect(await h!.restoreMismatches(staged, newest)).toEqual([]);
  });

  it("decrypts what XO's encryptor writes with the legacy aes-256-gcm as with chacha20-poly1305", () => {
    const require = createRequire(import.meta.url);
    // XO writes new remotes with chacha20-poly1305 only; its encryptor itself still writes the legacy algorithm.
    const { _getEncryptor } = require(
      path.join(path.dirname(require.resolve('@xen-orchestra/fs')), '_encryptor.js'),
    ) as {
      _getEncryptor: (algorithm: string, key: string) => { encryptData: (data: Buffer) => Buffer };
    };
    for (const algorithm of ['aes-256-gcm', 'chacha20-poly1305'] as const) {
      const sealed = _getEncryptor(algorithm, KEY).encryptData(Buffer.from('{"version":"2.0.0"}'));
      expect(decryptorFor(algorithm, Buffer.from(KEY))(sealed)?.toString(), algorithm).toBe('{"version":"2.0.0"}');
      expect(decryptorFor(algorithm, Buffer.from(KEY.replace('k', 'K')))(sealed), `${algorithm}, wrong key`).toBe(
        undefined,
      );
    }
  });

  it('the daemon, started before XO sets the remote up, reads it with the key: no settle time for jsons', async () => {
    const remote = await tempRemote();
    const encryptionKeyFile = await keyFile(KEY);
    // Ciphertext would count as complete only after this long: locking sooner proves the jsons were read.
    const config = {
      jsonSettleMs: 600_000,
      remotes: [
        { id: 'r', root: remote.root, immutabilityDurationMs: DAY, rebuildIndexOnStart: false, encryptionKeyFile },
      ],
    };
    await startDaemon(remote, { config, healthCheckEveryMs: 200 });
    const xo = await h!.openRemote({ root: remote.root, useVhdDirectory: true, encryptionKey: KEY });
    stopBeforeCleanup(() => xo.close());
    const vm = h!.makeVm({ disks: [4 * h!.MiB] });
    const now = Date.now();
    const backups = await h!.writeChain(xo, vm, [now - 3 * HOUR, now - 2 * HOUR, now - HOUR]);
    const needed = await h!.restoreFiles(xo, backups, 2);
    await waitFor(
      () => immutableAmong(needed).length === needed.length,
      'the newest backup and its chain to be locked',
    );
  });

  it('a wrong key stops the remote with a clear error that never shows the key; alone, the daemon does not start', async () => {
    const { root } = await encryptedRemote();
    const wrong = 'not-the-key-of-this-remote-32-ch';
    const file = await keyFile(wrong);
    const error = await refusalOf(() => readingOf({ id: 'r', encryptionKeyFile: file }, root));
    expect(error.code).toBe('KEY_NOT_USABLE');
    expect(error.message).toContain("does not decrypt XO's metadata.json");
    expect(error.value).toBe(file);
    expect(`${error.message} ${error.hint} ${String(error.value)}`).not.toContain(wrong);

    // Its only remote refused, the daemon does not start (systemctl shows the failure).
    const remote = {
      base: path.dirname(root.root),
      root: root.root,
      indexPath: path.join(await tempFolder(), 'index'),
    };
    const config = {
      remotes: [
        { id: 'r', root: root.root, immutabilityDurationMs: DAY, rebuildIndexOnStart: false, encryptionKeyFile: file },
      ],
    };
    const started = await refusalOf(() => startDaemon(remote, { config }));
    expect(started.code).toBe('KEY_NOT_USABLE');
  });

  it('a wrong key stops only its remote: the others are protected, and a fixed key file protects it without a restart', async () => {
    const bad = await encryptedRemote();
    const badFiles = await h!.restoreFiles(bad.xo, bad.backups, 2);
    const good = await tempRemote();
    const wrong = 'not-the-key-of-this-remote-32-ch';
    const file = await keyFile(wrong);
    const metricsFile = path.join(good.base, 'metrics.prom');
    const remotes = plainAndEncrypted(good.root, bad.remote.root, file);
    const running = await startDaemon(good, { config: { remotes, metricsFile }, healthCheckEveryMs: 200 });
    const refusal = running.logs.find((l) => l.level === 'error' && l.remote === 'enc');
    expect(refusal?.code).toBe('KEY_NOT_USABLE');
    expect(refusal?.msg).toContain("does not decrypt XO's metadata.json");

    // The plain remote is protected as usual.
    const xo = await h!.openRemote({ root: good.root, useVhdDirectory: true });
    stopBeforeCleanup(() => xo.close());
    const vm = h!.makeVm({ disks: [4 * h!.MiB] });
    const now = Date.now();
    const backups = await h!.writeChain(xo, vm, [now - 2 * HOUR, now - HOUR]);
    const needed = await h!.restoreFiles(xo, backups, 1);
    await waitFor(() => immutableAmong(needed).length === needed.length, "the plain remote's backup to be locked");
    expect(immutableAmong(badFiles), 'nothing locked on the refused remote').toEqual([]);

    // status and the metrics name the refused remote.
    const config = path.join(good.base, 'config.json');
    const configured = {
      plain: { root: good.root, immutabilityDuration: '1d' },
      enc: { root: bad.remote.root, immutabilityDuration: '1d', encryptionKeyFile: file },
    };
    await writeFile(config, JSON.stringify({ indexPath: good.indexPath, metricsFile, remotes: configured }));
    const status = async () => {
      const said: string[] = [];
      const io = { out: (line: string) => said.push(line), err: (line: string) => said.push(line) };
      const code = await main(['status', '--json', '-c', config], io);
      const report = JSON.parse(said.join('\n')) as { remotes: { id: string; healthy: boolean; problem: string }[] };
      return {
        code,
        enc: report.remotes.find((r) => r.id === 'enc')!,
        plain: report.remotes.find((r) => r.id === 'plain')!,
      };
    };
    const refused = await status();
    expect(refused.code, 'status asks for attention').not.toBe(0);
    expect(refused.enc.healthy).toBe(false);
    expect(refused.enc.problem).toMatch(/^KEY_NOT_USABLE: .*does not decrypt XO's metadata\.json.*; write there/);
    expect(refused.plain.healthy).toBe(true);
    await waitFor(
      async () => (await readFile(metricsFile, 'utf8').catch(() => '')).includes('remote_healthy{remote="enc"} 0'),
      'the metrics to say the refused remote is unhealthy',
    );
    expect(await readFile(metricsFile, 'utf8')).toContain('remote_healthy{remote="plain"} 1');

    // The right key, readable by others: still refused, for its mode now. Renamed in whole with its mode: written in
    // place, the right key could be read (and accepted) before the chmod that makes it readable by others.
    await writeFile(`${file}.new`, KEY, { mode: 0o644 });
    await chmod(`${file}.new`, 0o644);
    await rename(`${file}.new`, file);
    await waitFor(async () => (await status()).enc.problem.startsWith('KEY_FILE_REFUSED: '), 'the new problem');
    expect(immutableAmong(badFiles)).toEqual([]);

    // Its mode fixed: protected without a restart.
    await chmod(file, 0o600);
    await waitFor(
      () => immutableAmong(badFiles).length === badFiles.length,
      "the encrypted remote's backup to be locked",
      30_000,
    );
    expect(
      running.logs.some((l) => l.level === 'info' && l.remote === 'enc' && /key file .* accepted/.test(l.msg)),
    ).toBe(true);
    await waitFor(
      async () => (await readFile(metricsFile, 'utf8')).includes('remote_healthy{remote="enc"} 1'),
      'the metrics to say the remote is healthy again',
    );
    expect(JSON.stringify(running.logs)).not.toContain(wrong);
    expect(JSON.stringify(running.logs)).not.toContain(KEY);
  });

  it('a remote paused for a refused key file is not lifted by its index: expired units stay locked, status says why', async () => {
    const enc = await encryptedRemote();
    const files = await h!.restoreFiles(enc.xo, enc.backups, 2);
    const good = await tempRemote();
    const file = await keyFile(KEY);
    const remotes = plainAndEncrypted(good.root, enc.remote.root, file);
    let shiftMs = 0;
    const clock = { now: () => Date.now() + shiftMs };
    const first = await startDaemon(good, { config: { remotes }, clock });
    await waitFor(() => immutableAmong(files).length === files.length, 'the encrypted backups to be locked', 30_000);
    await first.daemon.stop();

    // The key file replaced by a wrong one, and every window past: the start-up lift pass skips the paused remote.
    await writeFile(file, 'not-the-key-of-this-remote-32-ch');
    shiftMs = 3 * DAY;
    const running = await startDaemon(good, { config: { remotes }, clock });
    expect(immutableAmong(files).length, 'nothing of the paused remote unlocked').toBe(files.length);
    const skipped = running.logs.filter((l) => l.remote === 'enc' && l.msg.startsWith('lift skipped: remote enc'));
    expect(skipped).toHaveLength(1);
    expect(skipped[0]!.msg).toContain('KEY_NOT_USABLE');

    const config = path.join(good.base, 'config.json');
    const configured = {
      plain: { root: good.root, immutabilityDuration: '1d' },
      enc: { root: enc.remote.root, immutabilityDuration: '1d', encryptionKeyFile: file },
    };
    await writeFile(config, JSON.stringify({ indexPath: good.indexPath, remotes: configured }));
    const liftSkipped = async (): Promise<string | null> => {
      const said: string[] = [];
      await main(['status', '--json', '-c', config], { out: (line) => said.push(line), err: () => undefined });
      const report = JSON.parse(said.join('\n')) as { remotes: { id: string; liftSkipped: string | null }[] };
      return report.remotes.find((r) => r.id === 'enc')!.liftSkipped;
    };
    await waitFor(async () => (await liftSkipped()) !== null, 'status to say the lift skips the paused remote');
    expect(await liftSkipped()).toMatch(/^remote enc is paused \(KEY_NOT_USABLE: .*nothing of it is unlocked/);
  });

  it('refuses a key file root does not own alone, a link, or one that holds no 32-character key', async () => {
    const { root } = await encryptedRemote();
    const cases: [string, () => Promise<string>, RegExp][] = [
      ['mode 0644', () => keyFile(KEY, 0o644), /has mode 0644/],
      ['mode 0640', () => keyFile(KEY, 0o640), /has mode 0640/],
      [
        'owned by nobody',
        async () => {
          const file = await keyFile(KEY);
          await chown(file, 65534, 65534);
          return file;
        },
        /owned by uid 65534, not root/,
      ],
      [
        'a symbolic link',
        async () => {
          const link = path.join(await tempFolder(), 'link.key');
          await symlink(await keyFile(KEY), link);
          return link;
        },
        /cannot open its key file/,
      ],
      ['33 characters', () => keyFile(`${KEY}x`), /does not hold a 32-character key/],
      ['missing', async () => path.join(await tempFolder(), 'none.key'), /cannot open its key file .*ENOENT/],
    ];
    for (const [what, make, message] of cases) {
      const file = await make();
      const error = await refusalOf(() => readingOf({ id: 'r', encryptionKeyFile: file }, root));
      expect(error.code, what).toBe('KEY_FILE_REFUSED');
      expect(error.message, what).toMatch(message);
      expect(error.hint, what).not.toBe('');
      expect(`${error.message} ${error.hint}`, what).not.toContain(KEY);
    }
  });
});
