import { link } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { IoctlAdapter } from '../../src/attributes/ioctl.js';
import { liftRemote } from '../../src/lift/apply.js';
import { verifyRemote } from '../../src/verify/verify.js';
import { DAY } from '../support/daemon.js';
import { LOCKED_AT, lockedVmBackup } from '../support/locked-backup.js';
import { isImmutable } from '../support/remote.js';

// A flat disk given a second name before it was locked is locked all the same (test/security/planted-before-json.test.ts
// for VHD directories): past its window, lift leaves it locked for an admin, and a dry run says the same beforehand.
describe('a disk locked all the same with a second hard link', () => {
  it('is left locked by lift past its window, and a dry run says so', async () => {
    let disk = '';
    const { context, logs } = await lockedVmBackup(1, async (remote, backup) => {
      disk = backup.units.find((u) => u.endsWith('.vhd'))!;
      await link(disk, path.join(remote.root, '.pin'));
    });
    expect(isImmutable(disk)).toBe(true);
    expect(logs.filter((l) => l.security === true).map((l) => l.path)).toEqual([disk]);
    const attributes = new IoctlAdapter();
    onTestFinished(() => attributes.close());
    // verify names it beforehand: locked and unchanged, but lift will leave it.
    const verified = await verifyRemote(context, attributes, { now: LOCKED_AT + DAY, jsonSettleMs: 0 });
    expect(verified.findings.filter((f) => f.kind === 'locked-anyway')).toEqual([
      { kind: 'locked-anyway', path: disk, detail: expect.stringMatching(/2 hard links/) as unknown },
    ]);
    const options = { now: LOCKED_AT + 8 * DAY, all: false };

    const dry = await liftRemote(context, attributes, { ...options, dryRun: true });
    const real = await liftRemote(context, attributes, { ...options, dryRun: false });

    for (const report of [dry, real]) {
      expect(report.suspicious.map((s) => s.path)).toEqual([disk]);
      expect(report.unlocked.map((u) => u.path)).not.toContain(disk);
    }
    expect(dry.suspicious[0]?.reason).toMatch(/2 hard links/);
    expect(isImmutable(disk)).toBe(true);
  });
});
