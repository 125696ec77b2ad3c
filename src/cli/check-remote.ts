import type { RemoteConfig } from '../config/schema.js';
import { readingOf } from '../remote/encryption.js';
import type { HeldRemote } from '../remote/held.js';
import { isFlatVhdName } from '../remote/model.js';
import { listVdiFolders, relativeIn } from '../remote/read.js';
import { isUntouchedByXo, resolveRemoteRoot } from '../remote/root.js';
import type { FoundLeaf } from '../remote/scan.js';
import { formatBytes } from '../bytes.js';
import type { ChainCost } from '../status/chain-cost.js';
import type { SurveyedVm } from '../status/restore-survey.js';
import { adviseXoSettings } from '../status/xo-settings.js';

// What `check` says of a remote's content: how it is read, and what in its backups fights the window or costs space.

// How the daemon will protect it, and, for a new remote, that either order of set-up works.
export async function remoteKind(remote: RemoteConfig): Promise<string> {
  // First: a key file that is not root-only (or not this remote's key) fails the check, whatever the remote holds.
  const reading = await readingOf(remote, { root: remote.root, realRoot: await resolveRemoteRoot(remote) });
  if (await isUntouchedByXo(remote.root))
    return (
      'new: XO has written nothing there yet; the daemon writes immutability.json once XO has, ' +
      'so add the remote in XO (with encryption or not) before or after starting the service' +
      (remote.encryptionKeyFile === undefined ? '' : "; the key is checked against XO's metadata.json then")
    );
  if (reading.decrypt !== undefined)
    return (
      `encrypted, read with the key file ${remote.encryptionKeyFile} (root-only, and it decrypts XO's ` +
      "metadata.json): aliases and jsons are read to find each backup's VHD directories"
    );
  return reading.encrypted
    ? 'encrypted: VHD directories are matched to backups by name (aliases and jsons are ciphertext)'
    : "plain: aliases and jsons are read to find each backup's VHD directories";
}

// XO opens a flat .vhd read-write even to read it: a locked one cannot be restored in place (docs/operations.md).
export function flatVhdWarning(held: HeldRemote, leaves: readonly FoundLeaf[]): string {
  let flat = 0;
  for (const leaf of leaves) {
    if (leaf.kind !== 'vm') continue;
    const vdis = listVdiFolders(held, relativeIn(held, leaf.path));
    if (vdis.some((v) => v.entries.some((e) => e.isFile && isFlatVhdName(e.name)))) flat++;
  }
  if (flat === 0) return 'no flat VHD: XO restores locked backups in place';
  return (
    `WARNING: ${flat} VM folder(s) hold flat .vhd files, which XO cannot restore while they are locked (it opens ` +
    'them read-write); in XO, set the remote to "store backup as multiple data blocks"; to restore meanwhile without ' +
    'unlocking, copy a backup out with `xo-immutable-backups stage-restore` (docs/operations.md, "Restoring after an ' +
    'incident")'
  );
}

// Settings of XO's job that fight the window, from the backups on the remote (docs/operations.md, "Chains").
export function xoSettingsWarning(vms: SurveyedVm[], now: number, remote: RemoteConfig): string {
  const advice = adviseXoSettings(vms, now, remote.immutabilityDurationMs);
  if (advice.length === 0) return 'no VM whose XO settings fight the window (as far as the remote shows)';
  return `WARNING: ${advice.map((a) => `VM ${a.vm}: ${a.detail}; ${a.set}`).join('. ')}`;
}

// Without the key, the cost said plainly: every VDI folder never freed, and what XO's merges could not remove.
export function chainCostWarning(cost: ChainCost): string {
  const { backups, bytes } = cost.beyondRetention;
  const held = `${backups} backup(s) XO's retention removed stay locked (${formatBytes(bytes)})`;
  if (cost.unfreedVdis.length === 0)
    return backups === 0
      ? 'none: no disk of a backup XO removed stays locked'
      : `${held}, each until the backup needing it leaves its window`;
  const folders = cost.unfreedVdis.map(
    (v) => `${v.vm}/${v.vdi} (${v.leftoverBackups} removed backup(s), ${formatBytes(v.leftoverBytes)})`,
  );
  return (
    `WARNING: encrypted remote read without its key: ${cost.unfreedVdis.length} VDI folder(s) keep every VHD locked ` +
    `while backups keep coming, so XO's merges fail and the remote grows: ${folders.join(', ')}; ${held}. Choose: ` +
    "the remote's key file, protectChains false for this remote, or accept the growth (docs/operations.md, " +
    '"Encrypted remotes: the cost and the three choices")'
  );
}
