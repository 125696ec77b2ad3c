// Drives Xen Orchestra's own backup code (@xen-orchestra/backups' RemoteAdapter, @xen-orchestra/fs, vhd-lib,
// @xen-orchestra/backup-archive) against a local folder used as a `file://` backup remote, as xo-server does.
//
// XO's modules are imported dynamically, after XO's logger has been pointed at `xoLogs`: XO's logs are captured, never
// printed, and runRetention() returns XO's warnings ("incremental backup is incomplete", ...) for the tests to read.

import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

// @xen-orchestra/log sends every log to the function at this global symbol, when it is set before the module loads.
const xoLogs = [];
const LOG_SYMBOL = Symbol.for('@xen-orchestra/log');
if (!(LOG_SYMBOL in globalThis)) {
  globalThis[LOG_SYMBOL] = (log) => {
    // levels: DEBUG 20, INFO 30, WARN 40, ERROR 50
    if (log.level >= 30) xoLogs.push({ level: log.level, namespace: log.namespace, message: log.message });
  };
}

const { getHandler } = await import('@xen-orchestra/fs');
const { relativeFromFile } = await import('@xen-orchestra/fs/path');
const { RemoteAdapter } = await import('@xen-orchestra/backups/RemoteAdapter.mjs');
const { formatFilenameDate } = await import('@xen-orchestra/backups/_filenameDate.mjs');
const { getVmBackupDir } = await import('@xen-orchestra/backups/_getVmBackupDir.mjs');
const { packUuid } = await import('@xen-orchestra/backups/_runners/_writers/_packUuid.mjs');
const { checkVhd } = await import('@xen-orchestra/backups/_runners/_writers/_checkVhd.mjs');
const { RandomAccessDisk } = await import('@xen-orchestra/disk-transform');
const { resolveVhdAlias } = await import('vhd-lib/aliases.js');

// vhd-lib's DEFAULT_BLOCK_SIZE: the only block size its writers accept.
const BLOCK_SIZE = 2 * 1024 * 1024;
export const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------------------------
// remote

// A local folder opened as an XO remote the way xo-server opens one (getHandler, sync), with a RemoteAdapter on it.
// retryEperm: false skips XO's five retries of every EPERM (100+200+500+1000+2000 ms), which a locked backup
// would otherwise cost on each refused call.
export async function openRemote({ root, useVhdDirectory = false, encryptionKey, retryEperm = true }) {
  assert(path.isAbsolute(root), 'root must be absolute');
  if (encryptionKey !== undefined) assert(encryptionKey.length === 32, 'encryptionKey must have 32 characters');
  const handler = getHandler({ url: 'file://' + root, useVhdDirectory, ...(encryptionKey ? { encryptionKey } : {}) });
  if (!retryEperm) {
    const retries = handler._conditionRetry.bind(handler);
    handler._conditionRetry = (error) => error?.code !== 'EPERM' && retries(error);
  }
  await handler.sync();
  // xo-server passes its backups.vhdDirectoryCompression; writeVhd always writes brotli, and isMergeableParent()
  // compares with this value: without it every delta on a VHD-directory remote would fall back to a full.
  const adapter = new RemoteAdapter(handler, { vhdDirectoryCompression: 'brotli' });
  return {
    root,
    handler,
    adapter,
    async close() {
      await handler.forget();
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// disks

// 2 MiB of content derived from `seed`.
function blockContent(seed) {
  const unit = createHash('sha512').update(String(seed)).digest();
  const buf = Buffer.allocUnsafe(BLOCK_SIZE);
  for (let o = 0; o < BLOCK_SIZE; o += unit.length) unit.copy(buf, o);
  return buf;
}

// Stands in for XAPI's export: a disk of 2 MiB blocks held in memory; a delta holds only the blocks that changed.
class MemoryDisk extends RandomAccessDisk {
  #virtualSize;
  #blocks;
  #differencing;
  constructor({ virtualSize, blocks, differencing }) {
    super();
    this.#virtualSize = virtualSize;
    this.#blocks = blocks;
    this.#differencing = differencing;
  }
  getVirtualSize() {
    return this.#virtualSize;
  }
  getBlockSize() {
    return BLOCK_SIZE;
  }
  async init() {}
  async close() {}
  isDifferencing() {
    return this.#differencing;
  }
  getBlockIndexes() {
    return [...this.#blocks.keys()].sort((a, b) => a - b);
  }
  hasBlock(index) {
    return this.#blocks.has(index);
  }
  async readBlock(index) {
    const data = this.#blocks.get(index);
    if (data === undefined) throw new Error(`no block ${index}`);
    return { index, data };
  }
}

// sha256 of a whole disk image given its allocated blocks (the others read as zeros).
function imageSha256(virtualSize, blocks) {
  const hash = createHash('sha256');
  const zero = Buffer.alloc(BLOCK_SIZE);
  for (let i = 0; i < virtualSize / BLOCK_SIZE; i++) hash.update(blocks.get(i) ?? zero);
  return hash.digest('hex');
}

// ---------------------------------------------------------------------------------------------------------------
// VMs and backups

// A fake VM: its uuid, a job and schedule, and its disks (the source VDIs name the vdis/<job>/<vdi> folders).
export function makeVm({ disks }) {
  for (const size of disks) assert(size % BLOCK_SIZE === 0, 'disk sizes must be multiples of 2 MiB');
  return {
    uuid: randomUUID(),
    jobId: randomUUID(),
    scheduleId: randomUUID(),
    disks: disks.map((virtualSize, i) => ({ vdiUuid: randomUUID(), virtualSize, userdevice: String(i), state: null })),
    backups: [],
  };
}

// One backup of `vm`, written as IncrementalRemoteWriter#_transfer writes it: per disk, checkBaseVdis's
// isMergeableParent() on the previous backup's disk (a parent that fails it, or cannot be opened, makes that disk a
// full, as in XO), adapter.writeVhd() with checkVhd as validator; then adapter.writeVmBackupMetadata(), last.
// `beforeAlias(dataPath, disk)` runs where XO's validator runs: a VHD directory finished, its alias not written yet.
async function writeBackup(remote, vm, { timestamp, blocks, full = false, beforeAlias }) {
  const { adapter, handler } = remote;
  const datetime = formatFilenameDate(timestamp);
  const previous = vm.backups.at(-1);
  const vmBackupDir = getVmBackupDir(vm.uuid);
  const vdis = {};
  const vbds = {};
  const vhds = {};
  const isVhdDifferencing = {};
  const result = { datetime, metadataPath: '', fellBackToFull: [], disks: [], expected: {} };

  for (const [i, d] of vm.disks.entries()) {
    const snapshotUuid = randomUUID();
    const vdiRef = `OpaqueRef:${snapshotUuid}`;
    const vhdPath = `vdis/${vm.jobId}/${d.vdiUuid}/${adapter.getVhdFileName(datetime)}`;
    const fullPath = `${vmBackupDir}/${vhdPath}`;
    const newBlocks = new Map(Object.entries(blocks[i]).map(([index, seed]) => [Number(index), blockContent(seed)]));
    let parentUuid, parentPath;
    let diskIsFull = previous === undefined || full;
    if (!diskIsFull) {
      const parent = previous.disks[i];
      let mergeable = false;
      try {
        mergeable = await adapter.isMergeableParent(packUuid(parent.snapshotUuid), parent.path);
      } catch (error) {
        // XO logs this and exports the disk in full (IncrementalRemoteWriter checkBaseVdis).
        result.baseCheckErrors = [...(result.baseCheckErrors ?? []), { path: parent.path, code: error?.code }];
      }
      if (mergeable) {
        parentUuid = packUuid(parent.snapshotUuid);
        parentPath = relativeFromFile(fullPath, parent.path);
      } else {
        diskIsFull = true;
        result.fellBackToFull.push(d.vdiUuid);
      }
    }
    const state = previous === undefined ? new Map() : d.state;
    const exported = diskIsFull ? new Map([...state, ...newBlocks]) : newBlocks;
    await adapter.writeVhd(
      fullPath,
      new MemoryDisk({ virtualSize: d.virtualSize, blocks: exported, differencing: !diskIsFull }),
      {
        validator: async (tmpPath) => {
          await checkVhd(handler, tmpPath);
          await beforeAlias?.(tmpPath, i);
        },
        uuid: packUuid(snapshotUuid),
        parentUuid,
        parentPath,
      },
    );
    d.state = new Map([...state, ...newBlocks]);

    vdis[vdiRef] = {
      uuid: snapshotUuid,
      name_label: `disk ${i}`,
      name_description: '',
      type: 'user',
      virtual_size: d.virtualSize,
      is_a_snapshot: true,
      sharable: false,
      read_only: false,
      other_config: {},
      sm_config: {},
      $snapshot_of$uuid: d.vdiUuid,
      $SR$uuid: '00000000-0000-4000-8000-000000000000',
    };
    vbds[`OpaqueRef:${randomUUID()}`] = { type: 'Disk', VDI: vdiRef, userdevice: d.userdevice, mode: 'RW' };
    vhds[vdiRef] = vhdPath;
    isVhdDifferencing[vdiRef] = !diskIsFull;
    result.disks.push({ vdiUuid: d.vdiUuid, snapshotUuid, path: fullPath });
    result.expected[d.vdiUuid] = imageSha256(d.virtualSize, d.state);
  }

  const vmRecord = { uuid: vm.uuid, name_label: 'xo-compat', is_a_template: false, is_a_snapshot: false, tags: [] };
  result.metadataPath = await adapter.writeVmBackupMetadata(vm.uuid, {
    includeNonNbdQcow2Fix: true,
    isVhdDifferencing,
    jobId: vm.jobId,
    mode: 'delta',
    scheduleId: vm.scheduleId,
    timestamp,
    vbds,
    vdis,
    version: '2.0.0',
    vifs: {},
    vhds,
    vm: vmRecord,
    vmSnapshot: { ...vmRecord, uuid: randomUUID(), is_a_snapshot: true, suspend_VDI: 'OpaqueRef:NULL' },
    vtpms: [],
    tags: [],
    size: 0,
  });
  vm.backups.push(result);
  return result;
}

// A full, then one delta per further timestamp: the full holds blocks 0, 1 and 3 of each disk, delta k rewrites
// block k and the k-th block from the end. `onWritten` runs after each backup, before the next one is written.
export async function writeChain(remote, vm, timestamps, { onWritten = async () => {} } = {}) {
  const results = [];
  for (const timestamp of timestamps) {
    const result = await writeBackup(remote, vm, { timestamp, blocks: nextBlocks(vm, timestamp) });
    results.push(result);
    await onWritten(result);
  }
  return results;
}

// One nightly run of XO's job for `vm`: a delta on the previous backup, or a full when `full` (XO's "full backup
// interval") or when the previous disk cannot be a parent. Blocks as writeChain writes them.
export async function writeNightly(remote, vm, timestamp, { full = false, beforeAlias } = {}) {
  return writeBackup(remote, vm, { timestamp, blocks: nextBlocks(vm, timestamp), full, beforeAlias });
}

// The same VM for another remote (an unprotected twin): same uuids and disks, none of its backups, so writing the
// same timestamps to both gives both the same content.
export function twinOf(vm) {
  return {
    ...vm,
    disks: vm.disks.map((d) => ({ ...d, state: null })),
    backups: [],
  };
}

function nextBlocks(vm, timestamp) {
  const k = vm.backups.length;
  return vm.disks.map((d) => {
    const n = d.virtualSize / BLOCK_SIZE;
    const indexes = k === 0 ? [0, 1, 3].filter((x) => x < n) : [k % n, n - 1 - (k % n)];
    return Object.fromEntries(indexes.map((x) => [x, `${d.vdiUuid}/${timestamp}/${x}`]));
  });
}

// ---------------------------------------------------------------------------------------------------------------
// restore

// A restore as ImportVmBackup does it without XAPI: readVmBackupMetadata, readIncrementalVmBackup, then every block
// of each disk's diskBlocks() (what XO streams to XAPI). Rejects with XO's error.
export async function restoreBackup(remote, metadataPath) {
  const { adapter } = remote;
  const metadata = await adapter.readVmBackupMetadata(metadataPath);
  const backup = await adapter.readIncrementalVmBackup(metadata, undefined, { useChain: true });
  const disks = {};
  for (const [ref, disk] of Object.entries(backup.disks)) {
    const virtualSize = disk.getVirtualSize();
    const blocks = new Map();
    for await (const { index, data } of disk.diskBlocks()) blocks.set(index, Buffer.from(data));
    disks[backup.vdis[ref].$snapshot_of$uuid] = imageSha256(virtualSize, blocks);
  }
  return disks;
}

// The VDIs whose restored content differs from what writeChain wrote (none when the backup restores identically).
export async function restoreMismatches(remote, backup) {
  const restored = await restoreBackup(remote, backup.metadataPath);
  return Object.entries(backup.expected)
    .filter(([vdi, sha256]) => restored[vdi] !== sha256)
    .map(([vdi]) => vdi);
}

// ---------------------------------------------------------------------------------------------------------------
// listing, retention

// adapter.listVmBackups, as xo-server lists a VM's backups for the UI.
export async function listVmBackups(remote, vmUuid) {
  return remote.adapter.listVmBackups(vmUuid);
}

// XO's retention keeping all but a VM's oldest backup: runRetention on the one listVmBackups lists first.
export async function pruneOldestBackup(remote, vmUuid) {
  const listed = await listVmBackups(remote, vmUuid);
  const oldest = listed.reduce((a, b) => (b.timestamp < a.timestamp ? b : a));
  return { listed, outcome: await runRetention(remote, vmUuid, [oldest]) };
}

// Retention as XO runs it: adapter.deleteDeltaVmBackups(backups) (unlink the jsons), then
// adapter.cleanVm(vmDir, { merge: true, remove: true }) (merge orphan disks into their children, delete the rest).
// Never throws: both errors and XO's warnings are returned.
export async function runRetention(remote, vmUuid, backups) {
  const logStart = xoLogs.length;
  const out = { deleteError: null, cleanError: null, cleanResult: null, warnings: [] };
  try {
    await remote.adapter.deleteDeltaVmBackups(backups);
  } catch (error) {
    out.deleteError = errorInfo(error);
  }
  try {
    out.cleanResult = await remote.adapter.cleanVm(getVmBackupDir(vmUuid), { merge: true, remove: true, lock: true });
  } catch (error) {
    out.cleanError = errorInfo(error);
  }
  out.warnings = xoLogs.slice(logStart).filter((l) => l.level >= 40);
  return out;
}

// cleanVm as runRetention runs it, with `meanwhile` run at XO's first unlink: after cleanVm has opened every disk and
// judged each backup, before it deletes what it judged broken (as a lift pass of the daemon could, at that moment).
export async function cleanVmInterrupted(remote, vmUuid, meanwhile) {
  const { handler } = remote;
  const unlink = handler.unlink;
  let ran = false;
  handler.unlink = async function (...args) {
    if (!ran) {
      ran = true;
      await meanwhile();
    }
    return unlink.apply(this, args);
  };
  try {
    return { ...(await runRetention(remote, vmUuid, [])), interrupted: ran };
  } finally {
    handler.unlink = unlink;
  }
}

function errorInfo(error) {
  if (Array.isArray(error?.errors)) return { code: error.errors[0]?.code, message: error.message };
  return { code: error?.code, message: String(error?.message ?? error) };
}

// ---------------------------------------------------------------------------------------------------------------
// files

// What a completed backup consists of, as absolute paths: its json, each flat .vhd, each .alias.vhd and the data
// directory XO resolves it to (through the handler, so encrypted aliases are read with the key).
async function backupUnits(remote, backup, { json = true } = {}) {
  const units = json ? [path.join(remote.root, backup.metadataPath)] : [];
  for (const d of backup.disks) {
    units.push(path.join(remote.root, d.path));
    const target = await resolveVhdAlias(remote.handler, d.path);
    if (target !== d.path) units.push(path.join(remote.root, target));
  }
  return units;
}

// Every file of a completed backup: its units, with the files inside its data directories.
export async function backupFiles(remote, backup) {
  return unitFiles(await backupUnits(remote, backup));
}

// Every file XO reads to restore chain[index] of a chain writeChain wrote (each delta's parent is the previous
// backup's disk): the backup's own files, and the disks of every backup before it.
export async function restoreFiles(remote, chain, index) {
  assert(index >= 0 && index < chain.length, 'index must be inside the chain');
  assert(
    chain.every((b) => b.fellBackToFull.length === 0),
    'a disk fell back to a full: the chain is not linear',
  );
  const units = await backupUnits(remote, chain[index]);
  for (const parent of chain.slice(0, index)) units.push(...(await backupUnits(remote, parent, { json: false })));
  return unitFiles(units);
}

async function unitFiles(units) {
  const files = [];
  async function walk(p) {
    if (!(await fs.lstat(p)).isDirectory()) return void files.push(p);
    for (const name of (await fs.readdir(p)).sort()) await walk(path.join(p, name));
  }
  for (const unit of units) await walk(unit);
  return files;
}

// What identifies each file's content and the file itself (inode, size, sha256; or the error code of reading it),
// keyed by its path relative to `root`: a change or a replacement both show.
export async function fingerprints(root, files) {
  const out = {};
  for (const file of files) {
    const key = path.relative(root, file);
    try {
      const { ino, size } = await fs.lstat(file);
      out[key] = `${ino} ${size} ${createHash('sha256')
        .update(await fs.readFile(file))
        .digest('hex')}`;
    } catch (error) {
      out[key] = error?.code ?? 'unreadable';
    }
  }
  return out;
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}
