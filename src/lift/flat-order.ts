import path from 'node:path';
import type { AttributesAdapter } from '../attributes/adapter.js';
import type { RemoteContext } from '../context/remote-context.js';
import { isFlatVhdName } from '../remote/model.js';
import { isVmMetadataName } from '../remote/datetime.js';
import { yieldIfDue } from '../concurrency.js';
import { isPlainlyBelow, withHeldRemote } from '../remote/held.js';
import { relativeIn, vdiFolderPaths } from '../remote/read.js';
import type { RemoteRoot } from '../remote/root.js';
import type { LiftCandidate } from './plan.js';

// Pure: the VM folder and datetime of a VM backup's json (`<root>/xo-vm-backups/<vm>/<dt>.json`), or undefined.
export function jsonBackup(root: string, unit: string): { vmFolder: string; datetime: string } | undefined {
  // A plain path (as the index writes them) is cut without path.relative: this runs for every unit a pass lifts.
  const parts = (isPlainlyBelow(root, unit) ? unit.slice(root.length + 1) : path.relative(root, unit)).split(path.sep);
  const [tree, vm, name] = parts;
  if (parts.length !== 3 || tree !== 'xo-vm-backups' || vm === undefined || name === undefined) return undefined;
  if (vm.startsWith('.') || !isVmMetadataName(name)) return undefined;
  return { vmFolder: path.join(root, tree, vm), datetime: name.slice(0, -'.json'.length) };
}

// XO's cleanVm deletes the json of a backup whose flat VHD it cannot open (docs/xo-remote-layout.md), so a json is not
// unlocked while a flat `<dt>.vhd` of its VM folder stays immutable and is not unlocked with it. Whatever keeps that
// VHD locked (a newer backup's chain in an index written before jsons were claimed with it, a failed unlock, a window
// record, a VDI folder renamed in), the json waits for a later pass; a pass asks at its end (lift/pass.ts), once its
// chunks are unlocked. A real lift leaves the look to the flag helper, which reads those flags just before it clears
// each json (its J records, libexec/xo-immutable-flags.pl). A dry run clears nothing and looks here: `wouldUnlock`,
// what it would have unlocked, holds nothing back; a disk whose flag cannot be read does. A VM folder that cannot be
// looked through keeps its jsons locked.
export async function holdJsonsOverLockedVhds(
  remote: RemoteContext,
  attributes: AttributesAdapter,
  candidates: readonly LiftCandidate[],
  wouldUnlock: ReadonlySet<string>,
): Promise<{ unlock: LiftCandidate[]; held: LiftCandidate[] }> {
  const jsonsByVm = new Map<string, { candidate: LiftCandidate; datetime: string }[]>();
  for (const candidate of candidates) {
    const backup = jsonBackup(remote.root, candidate.path);
    if (backup === undefined) continue;
    jsonsByVm.set(backup.vmFolder, [
      ...(jsonsByVm.get(backup.vmFolder) ?? []),
      { candidate, datetime: backup.datetime },
    ]);
  }
  const held = new Set<LiftCandidate>();
  // Flat VHDs the pass would leave locked, and the json each would leave without its disk.
  const vhds = new Map<string, LiftCandidate>();
  const looked = await lookForVhds(remote, jsonsByVm, wouldUnlock, vhds);
  for (const [vmFolder, jsons] of jsonsByVm)
    if (!looked.has(vmFolder)) for (const { candidate } of jsons) held.add(candidate);
  if (vhds.size > 0) {
    const flags = await attributes.isImmutable(remote, [...vhds.keys()]);
    // A flag that cannot be read holds the json, as the helper's J record does.
    for (const [vhd, json] of vhds) if (flags.get(vhd) !== false) held.add(json);
  }
  return { unlock: candidates.filter((c) => !held.has(c)), held: [...held] };
}

// Finds, through one held remote, each json's flat VHDs (`<dt>.vhd` in a VDI folder of its VM folder) that the pass
// would not unlock, into `vhds`: one lstat each. Returns the VM folders looked through; one that cannot be (a link on
// the way, a VDI folder swapped for one), or every one when the root cannot be opened, is not, and keeps its jsons
// locked.
async function lookForVhds(
  remote: RemoteRoot,
  jsonsByVm: ReadonlyMap<string, readonly { candidate: LiftCandidate; datetime: string }[]>,
  wouldUnlock: ReadonlySet<string>,
  vhds: Map<string, LiftCandidate>,
): Promise<Set<string>> {
  const looked = new Set<string>();
  await withHeldRemote(remote, async (held) => {
    for (const [vmFolder, jsons] of jsonsByVm) {
      await yieldIfDue();
      try {
        const vm = relativeIn(held, vmFolder);
        for (const vdi of vdiFolderPaths(held, vm))
          for (const { candidate, datetime } of jsons) {
            const name = `${datetime}.vhd`;
            const vhd = path.join(vmFolder, vdi, name);
            if (!isFlatVhdName(name) || wouldUnlock.has(vhd)) continue;
            if (held.lstat(path.posix.join(vm, vdi, name))?.isFile() === true) vhds.set(vhd, candidate);
          }
        looked.add(vmFolder);
      } catch {
        // Not looked through: its jsons stay locked.
      }
    }
  }).catch(() => undefined);
  return looked;
}
