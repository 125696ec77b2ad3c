import { formatBytes } from '../bytes.js';
import type { VmSnapshot } from '../backup/snapshot.js';
import { backupsOf, directoryOfAlias } from '../backup/vm.js';
import { parseBackupDatetime } from '../remote/datetime.js';
import { isInWindow } from '../remote/model.js';

// Pure: what a remote holds beyond XO's retention, and which VDI folders never free their chains (docs/operations.md,
// "Encrypted remotes: the cost and the three choices"). XO's retention deletes a backup's json and leaves its disks
// to cleanVm, which merges or removes them; a disk it could not (a locked unit: EPERM) stays behind, with no json of
// its datetime. That is all the daemon can see without the key, and all it counts: the jsons, the disks' names.

// The disks of one backup XO's retention removed, still on the remote: an alias (or flat VHD) of a VDI folder with no
// json of its datetime, although a newer json exists (a run still writing its disks has no newer json).
export interface LeftoverBackup {
  // The datetime XO named it by.
  backup: string;
  // Relative to the VM folder: "vdis/<job>/<vdi>".
  vdi: string;
  // Relative to the VM folder: the alias or flat VHD, and the VHD directory of an alias (read from the alias on a
  // plain remote, by name on an encrypted one).
  units: string[];
}

// A VDI folder whose chains are claimed by name (encrypted remote, chains protected): every VHD in it stays locked
// while its newest backup is inside its window, so none is freed while backups keep coming.
export interface UnfreedVdi {
  vdi: string;
  // Its aliases and VHD directories whose own window has passed, kept locked for the newest backup.
  pastOwnWindow: number;
}

export function leftoverBackups(snapshot: VmSnapshot): LeftoverBackup[] {
  const jsons = new Set(backupsOf(snapshot).map((b) => b.datetime));
  const newest = Math.max(...backupsOf(snapshot).map((b) => b.instant));
  const leftovers: LeftoverBackup[] = [];
  for (const vdi of snapshot.vdis)
    for (const entry of vdi.entries) {
      if (!entry.isFile || !entry.name.endsWith('.vhd') || entry.name.startsWith('.')) continue;
      const instant = parseBackupDatetime(entry.name);
      const backup = entry.name.replace(/(\.alias)?\.vhd$/, '');
      if (instant === undefined || instant >= newest || jsons.has(backup)) continue;
      const units = [`${vdi.path}/${entry.name}`];
      if (entry.name.endsWith('.alias.vhd')) {
        const target = directoryOfAlias(snapshot, units[0]!)?.path;
        if (target !== undefined) units.push(target);
      }
      leftovers.push({ backup, vdi: vdi.path, units });
    }
  return leftovers;
}

// With chains claimed by name (remote/by-name.ts chainClaimsByName): the VDI folders holding a backup inside its
// window, and so every VHD of the folder locked for it, that already keep some VHD past its own window.
export function unfreedVdis(snapshot: VmSnapshot, now: number, windowMs: number): UnfreedVdi[] {
  const inWindow = backupsOf(snapshot).filter((b) => isInWindow(b.instant, now, windowMs));
  const unfreed: UnfreedVdi[] = [];
  for (const vdi of snapshot.vdis) {
    const names = new Set(vdi.entries.map((e) => e.name));
    if (!inWindow.some((b) => names.has(`${b.datetime}.alias.vhd`))) continue;
    const vhds = [
      ...vdi.entries.filter((e) => e.isFile && e.name.endsWith('.alias.vhd') && !e.name.startsWith('.')),
      ...(snapshot.data.get(vdi.path) ?? []).filter((d) => d.finished),
    ];
    const pastOwnWindow = vhds.filter((v) => {
      const instant = parseBackupDatetime(v.name);
      return instant !== undefined && !isInWindow(instant, now, windowMs);
    }).length;
    if (pastOwnWindow > 0) unfreed.push({ vdi: vdi.path, pastOwnWindow });
  }
  return unfreed;
}

// One VM's figures once the leftovers' flags and sizes are known: only a locked unit counts (XO's next cleanVm
// removes an unlocked one).
export interface VmChainCost {
  vm: string;
  leftovers: readonly LeftoverBackup[];
  unfreed: readonly UnfreedVdi[];
}

export interface VdiCost {
  vm: string;
  vdi: string;
  pastOwnWindow: number;
  // Backups XO's retention removed whose disks in this folder stay locked, and the bytes those disks hold.
  leftoverBackups: number;
  leftoverBytes: number;
}

export interface ChainCost {
  // Chains are claimed by name: encrypted remote read without the key, protectChains on.
  chainsByName: boolean;
  // Backups XO's retention removed whose disks stay locked (XO's merges could not remove them), and their bytes.
  beyondRetention: { backups: number; units: number; bytes: number };
  // VDI folders whose chains cannot be freed while backups keep coming, most bytes first.
  unfreedVdis: VdiCost[];
}

// `locked`: whether each unit's immutable flag is on; `bytes`: what each unit holds (files' sizes, summed).
export function chainCostOf(
  vms: readonly VmChainCost[],
  chainsByName: boolean,
  locked: ReadonlyMap<string, boolean>,
  bytes: ReadonlyMap<string, number>,
  keyOf: (vm: string, unit: string) => string,
): ChainCost {
  const total = { backups: 0, units: 0, bytes: 0 };
  const unfreedVdis: VdiCost[] = [];
  for (const vm of vms) {
    const perVdi = new Map<string, { backups: Set<string>; bytes: number }>();
    for (const leftover of vm.leftovers) {
      const held = leftover.units.filter((u) => locked.get(keyOf(vm.vm, u)) === true);
      if (held.length === 0) continue;
      const size = held.reduce((n, u) => n + (bytes.get(keyOf(vm.vm, u)) ?? 0), 0);
      const vdi = perVdi.get(leftover.vdi) ?? { backups: new Set<string>(), bytes: 0 };
      vdi.backups.add(leftover.backup);
      vdi.bytes += size;
      perVdi.set(leftover.vdi, vdi);
      total.units += held.length;
      total.bytes += size;
    }
    total.backups += new Set(
      vm.leftovers.filter((l) => perVdi.get(l.vdi)?.backups.has(l.backup)).map((l) => l.backup),
    ).size;
    if (chainsByName)
      for (const { vdi, pastOwnWindow } of vm.unfreed)
        unfreedVdis.push({
          vm: vm.vm,
          vdi,
          pastOwnWindow,
          leftoverBackups: perVdi.get(vdi)?.backups.size ?? 0,
          leftoverBytes: perVdi.get(vdi)?.bytes ?? 0,
        });
  }
  unfreedVdis.sort((a, b) => b.leftoverBytes - a.leftoverBytes || b.pastOwnWindow - a.pastOwnWindow);
  return { chainsByName, beyondRetention: total, unfreedVdis };
}

// At most this many VDI folders are named one by one; status --json names them all.
const NAMED_VDIS = 20;

// The lines status prints (and check words as one): said plainly, with the choices an admin has.
export function renderChainCost(cost: ChainCost | null | undefined): string[] {
  if (cost === null || cost === undefined) return [];
  const lines: string[] = [];
  const { backups, bytes } = cost.beyondRetention;
  const unfreed = cost.unfreedVdis;
  if (unfreed.length > 0)
    lines.push(
      `  !! CHAINS NEVER FREED: ${unfreed.length} VDI folder(s) keep every VHD locked while backups keep coming`,
      '     (encrypted remote read without its key: chains are claimed by name)',
    );
  if (backups > 0)
    lines.push(
      `  beyond XO's retention: ${backups} backup(s) its merges could not remove, ${formatBytes(bytes)} locked`,
    );
  for (const v of unfreed.slice(0, NAMED_VDIS))
    lines.push(
      `    ${v.vm.slice(0, 8)} ${v.vdi}: ${v.pastOwnWindow} VHD(s) past their own window, ` +
        `${v.leftoverBackups} removed backup(s), ${formatBytes(v.leftoverBytes)}`,
    );
  if (unfreed.length > NAMED_VDIS)
    lines.push(`    and ${unfreed.length - NAMED_VDIS} more (status --json names them all)`);
  if (unfreed.length > 0)
    lines.push(
      "  choose: the remote's key file, protectChains false for this remote, or accept the growth",
      '     (docs/operations.md, "Encrypted remotes: the cost and the three choices")',
    );
  return lines;
}
