import { describe, expect, it } from 'vitest';
import {
  isNetworkFilesystem,
  judgeTarget,
  planCopy,
  selectBackup,
  type SourceEntry,
  type TargetFacts,
} from '../../src/stage/plan.js';

const backups = [
  { datetime: '20261120T061500Z', instant: Date.UTC(2026, 10, 20, 6, 15), complete: true },
  { datetime: '20261121T061500Z', instant: Date.UTC(2026, 10, 21, 6, 15), complete: true },
  // XO is still writing this one's json.
  { datetime: '20261122T061500Z', instant: Date.UTC(2026, 10, 22, 6, 15), complete: false },
];

describe('selectBackup', () => {
  it('takes the newest complete backup by default, never one XO is still writing', () => {
    expect(selectBackup(backups).backup?.datetime).toBe('20261121T061500Z');
  });

  it('takes the one asked for, by its name or an ISO time', () => {
    expect(selectBackup(backups, '20261120T061500Z').backup?.datetime).toBe('20261120T061500Z');
    expect(selectBackup(backups, '2026-11-20T06:15:00Z').backup?.datetime).toBe('20261120T061500Z');
  });

  it('refuses an unknown, malformed or incomplete backup, listing the ones it could stage', () => {
    for (const requested of ['20261119T061500Z', 'yesterday', '20261122T061500Z']) {
      const selection = selectBackup(backups, requested);
      expect(selection.backup, requested).toBeUndefined();
      expect(selection.backup === undefined && selection.hint).toContain('20261120T061500Z, 20261121T061500Z');
    }
    const incomplete = selectBackup(backups, '20261122T061500Z');
    expect(incomplete.backup === undefined && incomplete.reason).toContain('not complete');
    expect(selectBackup([])).toMatchObject({ reason: 'the VM folder holds no backup' });
  });
});

const file = (path: string, size = 10, links = 1, uid = 0): SourceEntry => ({ path, type: 'file', size, links, uid });
const dir = (path: string): SourceEntry => ({ path, type: 'directory', size: 4096, links: 2, uid: 0 });

describe('planCopy', () => {
  it('creates every parent folder before its files, copies each file once and sums the bytes', () => {
    const vm = 'xo-vm-backups/vm';
    const plan = planCopy([
      file('encryption.json', 36),
      file(`${vm}/20261121T061500Z.json`, 100),
      file(`${vm}/vdis/j/v/20261121T061500Z.alias.vhd`, 25),
      dir(`${vm}/vdis/j/v/data/20261121T061500Z.vhd`),
      dir(`${vm}/vdis/j/v/data/20261121T061500Z.vhd/blocks`),
      file(`${vm}/vdis/j/v/data/20261121T061500Z.vhd/blocks/0/0`, 2_097_664),
      // The same VHD named twice (a chain and the json): copied once.
      file(`${vm}/vdis/j/v/20261121T061500Z.alias.vhd`, 25),
    ]);
    expect(plan.directories).toEqual([
      'xo-vm-backups',
      `${vm}`,
      `${vm}/vdis`,
      `${vm}/vdis/j`,
      `${vm}/vdis/j/v`,
      `${vm}/vdis/j/v/data`,
      `${vm}/vdis/j/v/data/20261121T061500Z.vhd`,
      `${vm}/vdis/j/v/data/20261121T061500Z.vhd/blocks`,
      `${vm}/vdis/j/v/data/20261121T061500Z.vhd/blocks/0`,
    ]);
    expect(plan.files.map((f) => f.path)).toEqual([
      'encryption.json',
      `${vm}/20261121T061500Z.json`,
      `${vm}/vdis/j/v/20261121T061500Z.alias.vhd`,
      `${vm}/vdis/j/v/data/20261121T061500Z.vhd/blocks/0/0`,
    ]);
    expect(plan.bytes).toBe(36 + 100 + 25 + 2_097_664);
    expect(plan.refusals).toEqual([]);
  });

  it('names every symlink, FIFO or device and hard-linked file, and copies none of them', () => {
    const plan = planCopy([
      file('xo-vm-backups/vm/a.json'),
      { path: 'xo-vm-backups/vm/vdis/j/v/data/d.vhd/bat', type: 'symlink', size: 11, links: 1, uid: 0 },
      { path: 'xo-vm-backups/vm/vdis/j/v/data/d.vhd/footer', type: 'other', size: 0, links: 1, uid: 0 },
      file('xo-vm-backups/vm/vdis/j/v/data/d.vhd/header', 10, 2),
    ]);
    expect(plan.files.map((f) => f.path)).toEqual(['xo-vm-backups/vm/a.json']);
    expect(plan.refusals).toEqual([
      { path: 'xo-vm-backups/vm/vdis/j/v/data/d.vhd/bat', reason: 'a symbolic link' },
      {
        path: 'xo-vm-backups/vm/vdis/j/v/data/d.vhd/footer',
        reason: 'not a regular file or folder (a FIFO, socket or device)',
      },
      {
        path: 'xo-vm-backups/vm/vdis/j/v/data/d.vhd/header',
        reason:
          "a file with 2 hard links, of uid 0, not of the VM folder's owner (one may be a file outside the remote)",
      },
    ]);
  });

  it("copies a file with a second name when the VM folder's owner owns it, and names it", () => {
    const plan = planCopy(
      [file('xo-vm-backups/vm/a.json'), file('xo-vm-backups/vm/vdis/j/v/b.vhd', 10, 2, 1000)],
      1000,
    );
    expect(plan.refusals).toEqual([]);
    expect(plan.files.map((f) => f.path)).toEqual(['xo-vm-backups/vm/a.json', 'xo-vm-backups/vm/vdis/j/v/b.vhd']);
    expect(plan.secondNames).toEqual(['xo-vm-backups/vm/vdis/j/v/b.vhd']);
  });
});

describe('judgeTarget', () => {
  const remotes = [
    { id: 'main', root: '/srv/xo', realRoot: '/data/xo' },
    { id: 'other', root: '/srv/other', realRoot: '/srv/other' },
  ];
  const target = (overrides: Partial<TargetFacts>): TargetFacts => ({
    given: '/srv/restore',
    real: '/srv/restore',
    state: 'missing',
    filesystem: 'xfs',
    ...overrides,
  });

  it('accepts a new or empty folder on a local filesystem outside every remote', () => {
    expect(judgeTarget(target({}), remotes)).toBeUndefined();
    expect(judgeTarget(target({ state: 'empty', filesystem: 'ext4' }), remotes)).toBeUndefined();
  });

  it('refuses a folder inside any protected remote, by its path or through a link', () => {
    expect(judgeTarget(target({ given: '/srv/xo/restore', real: '/data/xo/restore' }), remotes)?.message).toContain(
      'inside the protected remote "main"',
    );
    expect(judgeTarget(target({ given: '/mnt/link/restore', real: '/data/xo/restore' }), remotes)?.message).toContain(
      '"main"',
    );
    expect(judgeTarget(target({ given: '/srv/other', real: '/srv/other' }), remotes)?.message).toContain('"other"');
  });

  it('refuses a folder that is not empty or not a folder', () => {
    expect(judgeTarget(target({ state: 'not-empty' }), remotes)?.message).toBe('/srv/restore exists and is not empty');
    expect(judgeTarget(target({ state: 'not-directory' }), remotes)?.message).toContain('not a folder');
  });

  it('refuses a network or unknown filesystem, with a hint', () => {
    for (const filesystem of ['nfs', 'nfs4', 'cifs', 'smb3', 'fuse.sshfs', 'unknown']) {
      const problem = judgeTarget(target({ filesystem }), remotes);
      expect(problem?.message, filesystem).toContain(`on a ${filesystem} filesystem`);
      expect(problem?.hint).toContain('local filesystem');
    }
    expect(isNetworkFilesystem('btrfs')).toBe(false);
  });
});
