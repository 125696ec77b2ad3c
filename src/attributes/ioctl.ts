import { setTimeout as sleep } from 'node:timers/promises';
import { AppError } from '../errors.js';
import type { AttributesAdapter, PathOutcome, Target, Within } from './adapter.js';
import { mapLimited } from '../concurrency.js';
import { FLAG_LANES, splitForLanes } from './batch.js';
import { FlagHelpers, type FlagHelperOptions } from './helper.js';
import {
  outcomeOf,
  parseHelperOutput,
  recordKindOf,
  relativeWithin,
  type HelperAnswer,
  type HelperRecord,
  type Operation,
} from './protocol.js';

// A just-written file on XFS with SELinux sometimes refuses its first change, and a helper may die (it is started
// again): a failed path gets this many tries.
const TRIES = 3;
const RETRY_DELAY_MS = 25;
// Outcomes that another try cannot change (what the path is, not how the filesystem answered).
// EKIND (a file where a directory was checked, or the reverse) and EFOREIGN (a directory unit holding what XO never
// writes) are final here: the daemon decides the unit again at its next reconcile. ETIMEDOUT (a helper stuck, killed)
// too: waiting as long again would hold every other batch up. EHELD (a json whose flat VHD is locked) waits for a
// later lift pass.
const FINAL_CODES = new Set([
  'EHELD',
  'ENOENT',
  'ENOTSUP',
  'ECONFINE',
  'ECHANGED',
  'ELINKS',
  'EINVAL',
  'ENOTDIR',
  'EROFS',
  'EKIND',
  'EFOREIGN',
  'EMACHINE',
  'ETIMEDOUT',
]);

// One request, one answer per record: records not reached (the helper died or was stuck) fail with why.
async function ask(
  helpers: FlagHelpers,
  operation: Operation,
  within: Within,
  records: readonly HelperRecord[],
): Promise<Map<number, HelperAnswer>> {
  const reply = await helpers.request(operation, within, records);
  const output = parseHelperOutput(reply.text);
  if (output.warnings.length > 0 && process.env.XO_IMMUTABLE_FLAGS_WARNINGS === '1')
    throw new AppError('FLAG_HELPER_FAILED', `The flag helper warned under perl -w: ${output.warnings.join('; ')}`, {
      value: output.warnings,
      hint: 'fix the helper (the tests run it with XO_IMMUTABLE_FLAGS_WARNINGS=1)',
    });
  if (output.anchor !== undefined) {
    const refused: HelperAnswer = { status: 'failed', ...output.anchor };
    return new Map(records.map((_, i) => [i, refused]));
  }
  if (!output.complete) {
    const { code, message } = reply.stopped ?? { code: 'EUNKNOWN', message: 'the flag helper stopped' };
    for (let i = 0; i < records.length; i++)
      if (!output.answers.has(i)) output.answers.set(i, { status: 'failed', code, message });
  }
  return output.answers;
}

// Asks again for what failed in a way another try may change, on a helper started again if the last one died.
async function askWithTries(
  helpers: FlagHelpers,
  operation: Operation,
  within: Within,
  records: readonly HelperRecord[],
): Promise<(HelperAnswer | undefined)[]> {
  const answers = new Array<HelperAnswer | undefined>(records.length);
  let pending = records.map((_, i) => i);
  for (let attempt = 1; attempt <= TRIES && pending.length > 0; attempt++) {
    if (attempt > 1) await sleep(RETRY_DELAY_MS * (attempt - 1));
    const got = await ask(
      helpers,
      operation,
      within,
      pending.map((i) => records[i]!),
    );
    pending = pending.filter((i, at) => {
      const answer = got.get(at);
      answers[i] = answer;
      return answer?.status === 'failed' && !FINAL_CODES.has(answer.code);
    });
  }
  return answers;
}

// The only place that changes or reads the immutable flag: a helper of ours walks each path from a held descriptor
// of the remote's root without following links and calls the ioctl on what it opened (docs/security.md, "rename
// race"). Many paths per run, one outcome per path.
export class IoctlAdapter implements AttributesAdapter {
  readonly #helpers: FlagHelpers;

  // Inert: the helpers start with the first request (tests shorten how long a stuck one is waited for).
  constructor(options: FlagHelperOptions = {}) {
    this.#helpers = new FlagHelpers(options);
  }

  // The process ids of its helpers running now.
  get helperPids(): number[] {
    return this.#helpers.pids;
  }

  // Ends its helpers (idle ones now, waited for; busy ones once answered); a later request starts one again.
  close(): Promise<void> {
    return this.#helpers.close();
  }

  async setImmutable(within: Within, targets: readonly Target[], immutable: boolean): Promise<PathOutcome[]> {
    return this.#act(within, targets, immutable ? 'set' : 'clear');
  }

  async checkClear(within: Within, targets: readonly Target[]): Promise<PathOutcome[]> {
    return this.#act(within, targets, 'check');
  }

  async #act(within: Within, targets: readonly Target[], operation: Operation): Promise<PathOutcome[]> {
    const outcomes = new Map<string, PathOutcome>();
    const batches: Target[][] = [];
    for (const recursive of [false, true]) {
      const mine = targets.filter((t) => t.recursive === recursive);
      const byPath = new Map(mine.map((t) => [t.path, t]));
      for (const paths of splitForLanes([...byPath.keys()], recursive)) batches.push(paths.map((p) => byPath.get(p)!));
    }
    await mapLimited(batches, FLAG_LANES, async (batch) => {
      for (const outcome of await this.#setBatch(within, batch, operation)) outcomes.set(outcome.path, outcome);
    });
    return targets.map((t) => outcomes.get(t.path) ?? outcomeOf(t.path, undefined));
  }

  async #setBatch(within: Within, batch: readonly Target[], operation: Operation): Promise<PathOutcome[]> {
    const outcomes = new Map<string, PathOutcome>();
    const pending: { target: Target; record: HelperRecord }[] = [];
    for (const target of batch) {
      const relative = relativeWithin(within, target.path);
      if (relative === undefined)
        outcomes.set(target.path, {
          path: target.path,
          status: 'failed',
          code: 'ECONFINE',
          message: `${target.path} is not plainly below ${within.root}: not touched`,
        });
      else
        pending.push({
          target,
          record: { relative, kind: recordKindOf(target), ino: target.ino, birthtimeNs: target.birthtimeNs },
        });
    }
    const answers = await askWithTries(
      this.#helpers,
      operation,
      within,
      pending.map((p) => p.record),
    );
    pending.forEach((p, i) => outcomes.set(p.target.path, outcomeOf(p.target.path, answers[i])));
    return batch.map((t) => outcomes.get(t.path)!);
  }

  async isImmutable(within: Within, paths: readonly string[]): Promise<Map<string, boolean | undefined>> {
    const found = new Map<string, boolean | undefined>(paths.map((p) => [p, undefined]));
    const inside = paths.flatMap((p) => {
      const relative = relativeWithin(within, p);
      return relative === undefined ? [] : [{ path: p, record: { relative, kind: '?' as const } }];
    });
    const byPath = new Map(inside.map((i) => [i.path, i.record]));
    await mapLimited(splitForLanes([...byPath.keys()], false), FLAG_LANES, async (batch) => {
      const answers = await askWithTries(
        this.#helpers,
        'get',
        within,
        batch.map((p) => byPath.get(p)!),
      );
      batch.forEach((p, i) => {
        const status = answers[i]?.status;
        found.set(p, status === 'on' ? true : status === 'off' ? false : undefined);
      });
    });
    return found;
  }
}
