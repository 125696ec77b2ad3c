import { mkdir, rename, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeVmBackup, xoDatetime } from '../../src/demo/sample-remote.js';
import { MAX_REFERENCES_PER_JSON } from '../../src/remote/model.js';
import { spawnProtect, startDaemon } from '../support/daemon.js';
import { allImmutable, isImmutable, tempRemote, waitFor, writeConfigFile } from '../support/remote.js';

const HOUR = 3_600_000;

// Empty VHD directories an attacker made in a VDI folder, so that matching references against the listing by scanning
// it costs 300,000 x 20,000 comparisons (a stalled event loop for minutes before references were looked up by name).
async function crowdedVdiFolder(vmFolder: string, entries: number): Promise<string> {
  const vdi = path.join(vmFolder, 'vdis', 'job', 'vdi');
  await mkdir(vdi, { recursive: true });
  for (let start = 0; start < entries; start += 1000)
    await Promise.all(
      Array.from({ length: Math.min(1000, entries - start) }, (_, i) => mkdir(path.join(vdi, `${start + i}.vhd`))),
    );
  return vdi;
}

// Written aside and renamed in, as XO writes its jsons: complete at once.
async function writeJson(file: string, content: unknown): Promise<void> {
  await writeFile(`${file}.tmp`, JSON.stringify(content));
  await rename(`${file}.tmp`, file);
}

describe('bounded work on hostile input', () => {
  // The daemon runs in its own process, as systemd runs it: a stall of its event loop must not stall the test's.
  it('a json naming 300,000 paths does not hold up the lock of another folder', async () => {
    const remote = await tempRemote();
    const evil = path.join(remote.root, 'xo-vm-backups', 'evil');
    await crowdedVdiFolder(evil, 20_000);
    const { stdout } = spawnProtect(await writeConfigFile(remote));
    await waitFor(() => stdout().includes('protecting 1 remote'), 'the daemon to start');

    // 300,000 references, some to directories that exist, the rest to names that do not.
    const vhds: Record<string, string> = {};
    for (let i = 0; i < 300_000; i++) vhds[`r${i}`] = `vdis/job/vdi/${i % 100 === 0 ? i / 100 : `missing-${i}`}.vhd`;
    const json = path.join(evil, `${xoDatetime(Date.now() - HOUR)}.json`);
    await writeJson(json, { mode: 'delta', vhds });

    // Other VMs' backups, written one after another's lock while the hostile json is there: their locks must not wait
    // for it. Judged by order, not time: each is locked while the hostile json is still unlocked (it is locked only
    // after 10 minutes unchanged), where the stall locked the others only after it had been through that json.
    // The bound on the poll is for a broken daemon on a loaded machine; the stall was minutes.
    for (let i = 0; i < 4; i++) {
      const other = await writeVmBackup(remote.root, { vm: `other-${i}`, datetime: xoDatetime(Date.now() - HOUR) });
      await waitFor(() => allImmutable(other.units), 'the other backup to be locked', 60_000);
      expect(isImmutable(json)).toBe(false);
    }
    await waitFor(() => stdout().includes(`${json}: it holds`), 'a warning naming the json', 60_000);
    expect(isImmutable(json)).toBe(false);
  }, 180_000);

  it(`locks what a json names up to ${MAX_REFERENCES_PER_JSON} paths, and warns naming it`, async () => {
    const remote = await tempRemote();
    const evil = path.join(remote.root, 'xo-vm-backups', 'evil');
    const vdi = await crowdedVdiFolder(evil, 5_000);
    const { daemon, logs } = await startDaemon(remote);

    const vhds: Record<string, string> = {};
    for (let i = 0; i < 5_000; i++) vhds[`r${i}`] = `vdis/job/vdi/${i}.vhd`;
    const json = path.join(evil, `${xoDatetime(Date.now() - HOUR)}.json`);
    await writeJson(json, { mode: 'delta', vhds });

    const last = MAX_REFERENCES_PER_JSON - 1;
    const named = [json, path.join(vdi, '0.vhd'), path.join(vdi, `${last}.vhd`)];
    await waitFor(() => allImmutable(named), 'the json and what it names to be locked', 60_000);
    // Stopping waits for the lock batch in flight: nothing more is locked after.
    await daemon.stop();
    expect(isImmutable(path.join(vdi, `${last + 1}.vhd`))).toBe(false);
    const warning = logs.find((l) => l.path === json && l.security === true);
    expect(warning?.msg).toContain('names 5000 paths');
  }, 120_000);

  it('20,000 dangling links inside a VHD directory do not stop other backups being locked', async () => {
    const remote = await tempRemote();
    const hostile = await writeVmBackup(remote.root, {
      vm: 'hostile',
      datetime: xoDatetime(Date.now() - 2 * HOUR),
      disks: [{ type: 'vhd-directory' }],
    });
    const directory = hostile.units.find((u) => u.includes(`${path.sep}data${path.sep}`))!;
    for (let start = 0; start < 20_000; start += 1000)
      await Promise.all(
        Array.from({ length: 1000 }, (_, i) =>
          symlink('/nonexistent/dangling', path.join(directory, `link-${start + i}`.padEnd(200, 'l'))),
        ),
      );
    const others = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        writeVmBackup(remote.root, {
          vm: `other-${i}`,
          datetime: xoDatetime(Date.now() - HOUR),
          disks: [{ type: 'flat' }, { type: 'vhd-directory' }],
        }),
      ),
    );
    const first = await startDaemon(remote);
    await first.daemon.stop();
    // The directory is locked all the same (its links are not XO's), and said once, however many links.
    expect(first.logs.filter((l) => l.security === true && l.path === directory)).toHaveLength(1);
    // Written while the daemon is running too: the next rounds are not held up by the hostile directory either.
    await startDaemon(remote);
    const later = await writeVmBackup(remote.root, { vm: 'later', datetime: xoDatetime(Date.now() - HOUR) });

    expect(allImmutable(others.flatMap((o) => o.units))).toBe(true);
    expect(allImmutable(hostile.units)).toBe(true);
    await waitFor(() => allImmutable(later.units), 'a backup written later to be locked', 60_000);
  }, 180_000);
});
