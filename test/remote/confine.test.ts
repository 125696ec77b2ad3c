import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isRealFolder } from '../../src/remote/confine.js';

describe('isRealFolder', () => {
  let base: string;
  let root: string;
  const remote = () => ({ root, realRoot: realpathSync(root) });

  beforeEach(() => {
    base = mkdtempSync(path.join(tmpdir(), 'xo-confine-'));
    root = path.join(base, 'remote');
    mkdirSync(path.join(root, 'xo-vm-backups', 'vm', 'vdis', 'job', 'vdi-a'), { recursive: true });
    mkdirSync(path.join(base, 'elsewhere', 'vdi-b'), { recursive: true });
  });
  afterEach(() => rmSync(base, { recursive: true, force: true }));

  it('accepts a folder reached with no link on the way, and the root itself', async () => {
    expect(await isRealFolder(remote(), path.join(root, 'xo-vm-backups', 'vm', 'vdis', 'job', 'vdi-a'))).toBe(true);
    expect(await isRealFolder(remote(), root)).toBe(true);
  });

  it('refuses a folder with a symbolic link anywhere below the root, the link itself included', async () => {
    symlinkSync(path.join(base, 'elsewhere'), path.join(root, 'xo-vm-backups', 'vm', 'vdis', 'linked'));
    expect(await isRealFolder(remote(), path.join(root, 'xo-vm-backups', 'vm', 'vdis', 'linked', 'vdi-b'))).toBe(false);
    expect(await isRealFolder(remote(), path.join(root, 'xo-vm-backups', 'vm', 'vdis', 'linked'))).toBe(false);
  });

  it('still finds a link in one folder after its siblings were found real in the same pass', async () => {
    symlinkSync(path.join(base, 'elsewhere', 'vdi-b'), path.join(root, 'xo-vm-backups', 'vm', 'vdis', 'job', 'vdi-b'));
    const known = new Set<string>();
    expect(await isRealFolder(remote(), path.join(root, 'xo-vm-backups', 'vm', 'vdis', 'job', 'vdi-a'), known)).toBe(
      true,
    );
    expect(await isRealFolder(remote(), path.join(root, 'xo-vm-backups', 'vm', 'vdis', 'job', 'vdi-b'), known)).toBe(
      false,
    );
    expect(known.has(path.join(root, 'xo-vm-backups', 'vm', 'vdis', 'job', 'vdi-b'))).toBe(false);
  });

  it('refuses every folder once the root resolves somewhere else than at start', async () => {
    const link = path.join(base, 'root-link');
    symlinkSync(root, link);
    const moved = { root: link, realRoot: realpathSync(root) };
    expect(await isRealFolder(moved, path.join(link, 'xo-vm-backups', 'vm'))).toBe(true);
    rmSync(link);
    symlinkSync(path.join(base, 'elsewhere'), link);
    mkdirSync(path.join(base, 'elsewhere', 'xo-vm-backups', 'vm'), { recursive: true });
    const known = new Set<string>();
    expect(await isRealFolder(moved, path.join(link, 'xo-vm-backups', 'vm'), known)).toBe(false);
    expect(await isRealFolder(moved, link, known)).toBe(false);
    expect(known.size).toBe(0);
  });

  it('judges paths not written the way path.join writes them by resolving them, as before', async () => {
    const vm = path.join(root, 'xo-vm-backups', 'vm');
    expect(await isRealFolder(remote(), `${vm}/`)).toBe(true);
    expect(await isRealFolder(remote(), `${root}/xo-vm-backups//vm`)).toBe(true);
    expect(await isRealFolder(remote(), `${root}/xo-vm-backups/./vm/vdis/../vdis`)).toBe(true);
    symlinkSync(path.join(base, 'elsewhere'), path.join(vm, 'linked'));
    expect(await isRealFolder(remote(), `${vm}/linked/`)).toBe(false);
    expect(await isRealFolder(remote(), `${vm}/./linked/vdi-b`)).toBe(false);
  });

  it('refuses a link that leads nowhere', async () => {
    symlinkSync(path.join(base, 'nowhere'), path.join(root, 'xo-vm-backups', 'dangling'));
    expect(await isRealFolder(remote(), path.join(root, 'xo-vm-backups', 'dangling', 'vdis'))).toBe(false);
  });

  it('says undefined for a folder that is not there, or under a file', async () => {
    writeFileSync(path.join(root, 'xo-vm-backups', 'vm', 'file'), '');
    expect(await isRealFolder(remote(), path.join(root, 'xo-vm-backups', 'gone', 'vdis'))).toBeUndefined();
    expect(await isRealFolder(remote(), path.join(root, 'xo-vm-backups', 'vm', 'file', 'below'))).toBeUndefined();
  });

  it('refuses a folder outside the root that resolves elsewhere', async () => {
    symlinkSync(path.join(base, 'elsewhere'), path.join(base, 'outside-link'));
    expect(await isRealFolder(remote(), path.join(base, 'outside-link'))).toBe(false);
  });
});
