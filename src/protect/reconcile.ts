import path from 'node:path';
import { readVmSnapshot, type JsonFile } from '../backup/snapshot.js';
import { completionOf } from '../backup/vm.js';
import type { Identity } from '../remote/identity.js';
import { findVmBackups, governingClaims, isInWindow, type Claim, type VmBackup } from '../remote/model.js';
import { AppError } from '../errors.js';
import { linkOnPath, NotAFolder, withHeldRemote, type HeldRemote } from '../remote/held.js';
import { isRealFolder } from '../remote/confine.js';
import { classifyFolder } from '../remote/patterns.js';
import type { Examined } from '../remote/read.js';
import type { BackupRef, LeafFolder, LockRequest, Refusal } from './context.js';
import { examineAt, reconcileDateFolder } from './date-folder.js';
import { addRequest, EntryReads, isLockedAsIndexed, lockedForOlder, windowOfBackup } from './request.js';
import { withOrphanFlags } from './by-name.js';
import { isLinked, lookAtLinkedFolder, settleInsideAndLook, settleLinksInVhdDirectory } from './linked-folder.js';
import type { FolderReport, IndexedUnit, ReconcileOptions } from './folder-report.js';
import { planVm, type LookedAt, type VmPlan } from './vm-plan.js';

export type { FolderReport, ProvableBackup, ReconcileOptions } from './folder-report.js';

// Level-triggered: returns what of the completed backups inside their window is not locked yet.
// Idempotent: running it twice, or after a crash, asks for nothing that is already locked and unchanged.
export async function reconcileFolder(folder: LeafFolder, options: ReconcileOptions): Promise<FolderReport> {
  if (folder.linked === true) {
    const linked = await lookAtLinkedFolder(folder, options);
    if (!linked.settled && linked.refusal !== undefined)
      return { requests: [], refusals: [linked.refusal], provable: [] };
    // Settled, or a real folder again since the scan: looked at as any leaf, if it is one (what is under a structural
    // folder settled is listed again by the daemon, protect/folder-report.ts).
    const real = { remote: folder.remote, kind: folder.kind, path: folder.path };
    const leaf = classifyFolder(path.relative(folder.remote.root, folder.path))?.role === 'leaf';
    const looked = (): Promise<FolderReport> => reconcileRealFolder(real, options);
    const report = leaf
      ? await settleInsideAndLook(real, options, looked)
      : { requests: [], refusals: [], provable: [] };
    if (!linked.settled) return report;
    return { ...withWarnings(report, [linked.warning]), ...(leaf ? {} : { relist: true }) };
  }
  const report = await reconcileRealFolder(folder, options);
  // The folder itself made a link since it was queued: looked at as one.
  if (report.refusals.some((r) => r.path === folder.path && r.reason === THROUGH_A_LINK) && isLinked(folder.path))
    return reconcileFolder({ ...folder, linked: true }, options);
  // A link where XO makes a folder inside a VM folder: settled as above, then the folder looked at again.
  return settleInsideAndLook(folder, options, () => reconcileRealFolder(folder, options), report);
}

function withWarnings(report: FolderReport, warnings: Refusal[]): FolderReport {
  return { ...report, warnings: [...(report.warnings ?? []), ...warnings] };
}

async function reconcileRealFolder(folder: LeafFolder, options: ReconcileOptions): Promise<FolderReport> {
  const report: FolderReport = { requests: [], refusals: [], provable: [] };
  try {
    // A VM folder's snapshot walks to it through held folders and says where it met a link (below).
    if (folder.kind === 'vm') return await reconcileVmFolder(folder, options);
    if (!(await isConfined(folder, report))) return report;
    await withHeldRemote(folder.remote, (held) => reconcileDateFolder(folder, held, options, report));
  } catch (error) {
    // A folder swapped for a link after the check above: nothing was read through it; what was asked stands.
    if (!isLinkOnPath(error)) throw error;
    report.refusals.push({ path: folder.path, reason: (error as Error).message, security: true });
  }
  return report;
}

const THROUGH_A_LINK = 'the folder is reached through a symbolic link';

// The folder must be where its path says, with no symlink on the way: otherwise a planted link could point us at /etc.
async function isConfined(folder: LeafFolder, report: FolderReport): Promise<boolean> {
  const real = await isRealFolder(folder.remote, folder.path);
  if (real === false) report.refusals.push({ path: folder.path, reason: THROUGH_A_LINK, security: true });
  return real === true;
}

function isLinkOnPath(error: unknown): boolean {
  return error instanceof AppError && error.code === 'REMOTE_LINK_ON_PATH';
}

// A complete or unfinished-looking backup to look at: its json's entry and its window (protect/arrival.ts).
interface Candidate extends LookedAt {
  examined: Examined;
}

// Three steps: the folder read once (backup/snapshot.ts: every json's entry, the content of those looked at, links as
// chains need them), a pure plan (protect/vm-plan.ts), then the claims examined through the held folders and asked for.
async function reconcileVmFolder(folder: LeafFolder, options: ReconcileOptions): Promise<FolderReport> {
  const heldUntil = folder.remote.index.holds.heldUntil(path.basename(folder.path), options.now);
  if (heldUntil !== undefined) {
    // Nothing of a held VM is proven either: once the hold ends, every backup of it is looked at again.
    options.proven?.retainOnly(folder.path, []);
    return { requests: [], refusals: [], provable: [], heldUntil };
  }
  const reads = new EntryReads(folder.remote.index);
  return withHeldRemote(folder.remote, async (held) => {
    let looked: Candidate[] = [];
    let pastWindow: number | undefined = 0;
    const snapshot = await readVmSnapshot(held, path.basename(folder.path), folder.remote.encrypted, {
      lazy: true,
      select: async (jsons) => {
        ({ looked, pastWindow } = await lookAt(folder, jsons, reads, options));
        return new Set(looked.map((item) => item.backup.metadata));
      },
    });
    // The VM folder, or a folder above it, a link: nothing was read through it, and it is said (a VM folder gone or
    // made a file since it was queued: nothing to say). A link inside it (a json, a folder XO writes): said by its path.
    const refused = snapshot.problems.flatMap((p): Refusal[] => {
      if (p.path === snapshot.folder)
        return p.reason === 'a symbolic link' ? [{ path: folder.path, reason: THROUGH_A_LINK, security: true }] : [];
      return p.path.startsWith(`${snapshot.folder}/`)
        ? [{ path: path.join(held.root, p.path), reason: p.reason, security: true }]
        : [linkRefusal(path.join(held.root, p.path), p.path, p.reason)];
    });
    const protectChains = options.protectChains !== false;
    const encrypted = folder.remote.encrypted;
    const complete = looked.some(
      (item) => item.alreadyLocked || completionOf(snapshot, item.backup, options.now, options.jsonSettleMs).complete,
    );
    const flags = options.flags && { reader: options.flags, within: folder.remote };
    const data =
      encrypted && complete ? await withOrphanFlags(folder.path, snapshot.vdis, snapshot.data, flags) : undefined;
    const facts = { folder: folder.path, now: options.now, jsonSettleMs: options.jsonSettleMs, protectChains };
    const plan = planVm(snapshot, looked, data === undefined ? facts : { ...facts, data });
    const acted = await act(folder, held, plan, reads, options);
    return {
      ...report(plan, acted, [...refused, ...plan.refusals, ...acted.refusals], pastWindow),
      plantedLinks: refused.length,
    };
  });
}

// Which backups to look at, from their jsons' entries and the index: those in their window, but a proven one only
// when newer than one that is not (by name, a backup past its window by name is never looked at).
async function lookAt(
  folder: LeafFolder,
  jsons: ReadonlyMap<string, JsonFile>,
  reads: EntryReads,
  options: ReconcileOptions,
): Promise<{ looked: Candidate[]; pastWindow?: number }> {
  const { windowMs } = folder.remote;
  const byName = folder.remote.windowStart === 'name';
  const named = findVmBackups([...jsons.keys()]);
  const backups = named.filter((b) => !byName || isInWindow(b.instant, options.now, windowMs));
  if (allProven(folder, backups, jsons, options))
    return byName ? { looked: [], pastWindow: named.length - backups.length } : { looked: [] };
  const dated: Candidate[] = [];
  for (const backup of backups) {
    const json = jsons.get(backup.metadata) as JsonFile;
    // The json is examined again as a unit (its links judged there).
    const examined: Examined = {
      identity: json.identity,
      type: 'file',
      links: 1,
      size: json.size,
      mtimeMs: json.mtimeMs,
    };
    const at = path.join(folder.path, backup.metadata);
    const start = await windowOfBackup(
      folder,
      backup.instant,
      examined,
      { path: at, examined },
      { ...options, index: reads },
    );
    dated.push({ backup, examined, ...start, alreadyLocked: false });
  }
  const inWindow = dated.filter((item) => isInWindow(item.instant, options.now, windowMs));
  options.proven?.retainOnly(
    folder.path,
    inWindow.map((item) => item.backup.metadata),
  );
  const looked = toLookAt(folder, inWindow, options);
  for (const item of looked)
    item.alreadyLocked = await isLockedAsIndexed(
      reads,
      item.instant,
      path.join(folder.path, item.backup.metadata),
      item.examined,
    );
  return { looked, pastWindow: byName ? named.length - backups.length : dated.length - inWindow.length };
}

// Every backup proven: none is looked at (toLookAt), so no window is read (a record each). Their proofs stand (a full
// proof drops those past their window), and how many are past theirs is not told.
function allProven(
  folder: LeafFolder,
  backups: readonly VmBackup[],
  jsons: ReadonlyMap<string, JsonFile>,
  options: ReconcileOptions,
): boolean {
  const proven = (b: VmBackup): boolean =>
    isProven(folder, b.metadata, (jsons.get(b.metadata) as JsonFile).identity, options);
  if (backups.length === 0 || !backups.every(proven)) return false;
  options.proven?.retainOnly(
    folder.path,
    backups.map((b) => b.metadata),
  );
  return true;
}

// Proven, and the look is not a full proof (which ignores proofs).
function isProven(folder: LeafFolder, name: string, identity: Identity, options: ReconcileOptions): boolean {
  return options.full !== true && options.proven?.isProven(folder.path, name, identity) === true;
}

// A proven backup is skipped only when it is older than every backup looked at: a unit belongs to the newest backup
// that references it, so a newer one must take part even when proven.
function toLookAt(folder: LeafFolder, jsons: readonly Candidate[], options: ReconcileOptions): Candidate[] {
  const proven = (item: Candidate): boolean => isProven(folder, item.backup.metadata, item.examined.identity, options);
  const oldestUnproven = Math.min(...jsons.filter((item) => !proven(item)).map((item) => item.instant));
  return jsons.filter((item) => !(item.instant < oldestUnproven && proven(item)));
}

interface Acted {
  requests: LockRequest[];
  refusals: Refusal[];
  warnings: Refusal[];
  flagsToRead?: IndexedUnit[];
  // Backups with a claimed unit gone since the listing.
  missing: Set<string>;
}

// Each governing claim examined through the folders the snapshot holds, then asked for unless locked as indexed.
async function act(
  folder: LeafFolder,
  held: HeldRemote,
  plan: VmPlan,
  reads: EntryReads,
  options: ReconcileOptions,
): Promise<Acted> {
  const acted: Acted = { requests: [], refusals: [], warnings: [], missing: new Set() };
  for (const claim of governingClaims(plan.claims)) {
    const unit = path.join(folder.path, claim.unit.path);
    const examined = examineHeld(held, unit, acted.refusals);
    if (examined === undefined) {
      acted.missing.add(claim.backup.label);
      continue;
    }
    if (await isLockedAsIndexed(reads, claim.backup.instant, unit, examined)) {
      // Only a full proof pays for reading flags: event reconciles take an unchanged identity for locked.
      if (options.full === true)
        (acted.flagsToRead ??= []).push({ unit, examined, recursive: claim.unit.recursive, backup: claim.backup });
      continue;
    }
    const lockedAs = await redated(claim, unit, examined);
    // A VHD directory: a link where XO makes its blocks' folders is settled before the lock (protect/linked-folder.ts).
    if (claim.unit.recursive && options.settle !== false)
      acted.warnings.push(...settleLinksInVhdDirectory(held, path.basename(folder.path), claim.unit.path, options.now));
    addRequest(acted, folder, {
      unit,
      examined,
      recursive: claim.unit.recursive,
      backup: claim.backup,
      ...(lockedAs === undefined ? {} : { lockedAs }),
    });
  }
  return acted;

  // Outside a full proof (which reads flags), a file locked for an older backup is re-dated only. Never a directory:
  // its entry and top folder's ctime say nothing of what is below, which a lift or hold that stopped part-way left
  // unlocked (the helper clears the top last), so only the helper's walk can say the whole tree is locked.
  async function redated(claim: Claim<BackupRef>, unit: string, examined: Examined): Promise<Identity | undefined> {
    if (options.full === true || claim.unit.recursive) return undefined;
    return lockedForOlder(reads, claim.backup.instant, unit, examined);
  }
}

// The unit itself through its held folder; undefined when gone. A folder on its way swapped for a link: a security
// refusal naming it, the rest of the folder goes on, so one planted link cannot keep a backup's other units unlocked.
function examineHeld(held: HeldRemote, unit: string, refusals: Refusal[]): Examined | undefined {
  try {
    return examineAt(held, unit);
  } catch (error) {
    if (!isLinkOnPath(error)) throw error;
    refusals.push({ path: unit, reason: (error as Error).message, security: true });
    return undefined;
  }
}

function linkRefusal(at: string, folder: string, reason: string): Refusal {
  return { path: at, reason: linkOnPath(at, new NotAFolder(folder, reason)).message, security: true };
}

// A refusal anywhere in the folder, or a missing unit, takes the proof back: the next reconcile looks again.
function report(plan: VmPlan, acted: Acted, refusals: Refusal[], pastWindow: number | undefined): FolderReport {
  const missing = new Set([...plan.missing, ...acted.missing]);
  const considered = plan.provable.map((backup) => backup.json);
  return {
    requests: acted.requests,
    refusals,
    provable: refusals.length > 0 ? [] : plan.provable.filter((backup) => !missing.has(backup.json)),
    unprovable: refusals.length > 0 ? considered : considered.filter((json) => missing.has(json)),
    pastWindow,
    ...(plan.warnings.length + acted.warnings.length > 0 ? { warnings: [...plan.warnings, ...acted.warnings] } : {}),
    ...(plan.recheckAt === undefined ? {} : { recheckAt: plan.recheckAt }),
    ...(missing.size > 0 ? { unitsMissing: true } : {}),
    ...(plan.chainUnknown === undefined ? {} : { chainUnknown: plan.chainUnknown }),
    ...(plan.flatVhds === undefined ? {} : { flatVhds: plan.flatVhds }),
    ...(acted.flagsToRead === undefined ? {} : { flagsToRead: acted.flagsToRead }),
  };
}
