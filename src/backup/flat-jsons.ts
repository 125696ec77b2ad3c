import { isFlatVhdName, type UnitRef, type VmListing } from '../remote/model.js';
import { isVmMetadataName } from '../remote/datetime.js';

// XO opens a flat VHD read-write even to check it, so its cleanVm calls a locked one broken, and with it every disk
// built on it, and unlinks the json of each backup whose disk is broken (docs/xo-remote-layout.md, "cleanVm on a
// flat remote"). A flat VHD locked for a newer backup's chain therefore keeps the json of its own backup locked with
// it: otherwise that json is lifted at its own window's end, and the next cleanVm deletes a backup XO's retention
// keeps. XO names a run's json and flat VHDs after the same datetime (a merged VHD takes its child's name), so the
// json is found by name. Pure: what the chain claims and the VM folder's listing in, the jsons to claim out.
export function jsonsOfFlatChain(chain: readonly UnitRef[], listing: VmListing): UnitRef[] {
  const jsons = new Map<string, UnitRef>();
  for (const unit of chain) {
    const name = unit.path.slice(unit.path.lastIndexOf('/') + 1);
    if (unit.recursive || !unit.path.startsWith('vdis/') || !isFlatVhdName(name)) continue;
    const json = `${name.slice(0, -'.vhd'.length)}.json`;
    if (isVmMetadataName(json) && listing.top.get(json)?.isFile === true)
      jsons.set(json, { path: json, recursive: false });
  }
  return [...jsons.values()];
}
