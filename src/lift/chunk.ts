import type { AttributesAdapter, DirectoryLayout, PathOutcome, Target } from '../attributes/adapter.js';
import type { RemoteContext } from '../context/remote-context.js';
import type { LiftedUnit, LiftReport } from './report.js';
import { checkCandidates, type UnlockChecks } from './candidate.js';
import type { LiftCandidate } from './plan.js';

export interface ChunkLifted {
  unlocked: LiftCandidate[];
  gone: LiftCandidate[];
}

interface Safe {
  candidate: LiftCandidate;
  recursive: boolean;
  orDirectory: boolean;
}

// A chunk judged: to unlock (the flag helper still refuses what is not the unit locked), or already gone.
export interface CheckedChunk {
  safe: Safe[];
  gone: LiftCandidate[];
}

// Checks and unlocks one chunk. `meanwhile` (forgetting the chunk before) runs while this chunk's flag helper does, so their
// disk waits overlap; the helper is waited for whatever `meanwhile` does, so nothing started here outlives the call.
export async function unlockChunk(
  remote: RemoteContext,
  attributes: AttributesAdapter,
  candidates: readonly LiftCandidate[],
  checks: UnlockChecks,
  report: LiftReport,
  meanwhile: () => Promise<void>,
): Promise<ChunkLifted> {
  const checked = await checkChunk(remote, candidates, report, checks);
  return clearChunk(remote, attributes, checked, checks, report, meanwhile);
}

// Unlocks a chunk checked by checkChunk; `meanwhile` as in unlockChunk. `afterFlatVhds`: the chunk is VM jsons, each
// unlocked only when no flat VHD of its backup is locked (lift/flat-order.ts); the others are deferred.
export async function clearChunk(
  remote: RemoteContext,
  attributes: AttributesAdapter,
  { safe, gone }: CheckedChunk,
  { dryRun, afterFlatVhds = false }: { dryRun: boolean; afterFlatVhds?: boolean },
  report: LiftReport,
  meanwhile: () => Promise<void>,
): Promise<ChunkLifted> {
  let unlocked: LiftCandidate[] = [];
  // Forgetting the chunk before failed: this chunk is still reported as unlocked (its entries stay for the next pass).
  let forgetFailure: PromiseRejectedResult | undefined;
  if (safe.length === 0) {
    await meanwhile();
  } else if (dryRun) {
    // What the helper would refuse (a directory holding what XO never writes, a second name...), as the lift would.
    await meanwhile();
    unlocked = sortOutcomes(safe, await attributes.checkClear(remote, targetsOf(safe, false)), gone, report);
  } else {
    const targets = targetsOf(safe, afterFlatVhds);
    const [unlocking, other] = await Promise.allSettled([attributes.setImmutable(remote, targets, false), meanwhile()]);
    if (unlocking.status === 'rejected') throw unlocking.reason;
    unlocked = sortOutcomes(safe, unlocking.value, gone, report);
    if (other.status === 'rejected') forgetFailure = other;
  }
  report.unlocked.push(...unlocked.map(unitOf));
  report.vanished.push(...gone.map(unitOf));
  if (forgetFailure !== undefined) throw forgetFailure.reason;
  return { unlocked, gone };
}

// Splits a chunk by verdict: safe to unlock, already gone, or reported (suspicious or missing) and left alone.
export async function checkChunk(
  remote: RemoteContext,
  candidates: readonly LiftCandidate[],
  report: LiftReport,
  checks: UnlockChecks,
): Promise<CheckedChunk> {
  const verdicts = await checkCandidates(remote, candidates, checks);
  const safe: Safe[] = [];
  const gone: LiftCandidate[] = [];
  candidates.forEach((candidate, i) => {
    const verdict = verdicts[i]!;
    if (verdict.kind === 'suspicious') report.suspicious.push({ path: candidate.path, reason: verdict.reason });
    else if (verdict.kind === 'missing') report.failed.push({ path: candidate.path, message: verdict.reason });
    else if (verdict.kind === 'vanished') gone.push(candidate);
    else safe.push({ candidate, recursive: verdict.recursive, orDirectory: verdict.orDirectory });
  });
  return { safe, gone };
}

// Each with the identity its entry recorded: the helper unlocks that file or nothing, and its refusals are the lift's
// check (docs/security.md, "rename race"). A directory is cleared only as far as its layout goes: one holding anything
// else stays locked (EFOREIGN).
function targetsOf(safe: readonly Safe[], afterFlatVhds: boolean): Target[] {
  return safe.map(({ candidate, recursive, orDirectory }) => ({
    path: candidate.path,
    recursive,
    orDirectory,
    layout: layoutOf(candidate),
    ino: candidate.identity?.ino,
    birthtimeNs: candidate.identity?.birthtimeNs,
    afterFlatVhds,
  }));
}

// A VM backup's directory unit is a VHD directory; a config or pool backup's, its date folder.
function layoutOf(candidate: LiftCandidate): DirectoryLayout {
  return candidate.kind === 'vm' ? 'vhd-directory' : 'date-folder';
}

// A json whose flat VHD stays locked (the helper's J record): it waits for a later pass, as XO's lock makes a unit wait.
const WAITS_CODES = new Set(['EHELD']);

// What the flag helper refuses because of what the unit holds or is, or what is on its way: kept locked and reported as
// a security warning, as lift's own examine says of the same (a link on the way or a root moved: ECONFINE; a link or
// special file: ENOTSUP, also said by a filesystem without the flag, where nothing could have been locked; another file:
// ECHANGED). A folder on the way gone or made a file is failed (entries kept).
const SUSPICIOUS_CODES = new Set(['EFOREIGN', 'EKIND', 'ELINKS', 'ECONFINE', 'ENOTSUP', 'ECHANGED']);

// The candidates the flag helper unlocked; those it found gone join `gone`, the others are reported as failed (or
// suspicious, when what is at the path is not what was locked).
function sortOutcomes(
  safe: readonly Safe[],
  outcomes: readonly PathOutcome[],
  gone: LiftCandidate[],
  { failed, suspicious, deferred }: Pick<LiftReport, 'failed' | 'suspicious' | 'deferred'>,
): LiftCandidate[] {
  // In the targets' order, as the adapter answers; by path only when not (a map of thousands is not built for nothing).
  let byPath: Map<string, PathOutcome> | undefined;
  const unlocked: LiftCandidate[] = [];
  for (let i = 0; i < safe.length; i++) {
    const { candidate } = safe[i]!;
    let outcome = outcomes[i];
    if (outcome?.path !== candidate.path)
      outcome = (byPath ??= new Map(outcomes.map((o) => [o.path, o]))).get(candidate.path);
    if (outcome?.status === 'ok') unlocked.push(candidate);
    else if (outcome?.status === 'vanished') gone.push(candidate);
    else if (outcome?.status === 'failed' && WAITS_CODES.has(outcome.code)) deferred.push(candidate.path);
    else if (outcome?.status === 'failed' && SUSPICIOUS_CODES.has(outcome.code))
      suspicious.push({ path: candidate.path, reason: `${outcome.message}; it stays locked, check it by hand` });
    else failed.push({ path: candidate.path, message: failureOf(outcome) });
  }
  return unlocked;
}

// A folder on the way gone (ENOENT: the unit itself gone is vanished) or made a file: renamed with a locked unit inside.
const FOLDER_GONE_CODES = new Set(['ENOENT', 'ENOTDIR']);

function failureOf(outcome: PathOutcome | undefined): string {
  if (outcome?.status !== 'failed') return 'no outcome reported';
  if (!FOLDER_GONE_CODES.has(outcome.code)) return outcome.message;
  return `its folder is gone (renamed?): ${outcome.message}; entries kept, the next pass tries again`;
}

function unitOf(candidate: LiftCandidate): LiftedUnit {
  return { path: candidate.path, day: candidate.day, kind: candidate.kind };
}
