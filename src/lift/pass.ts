import path from 'node:path';
import type { AttributesAdapter } from '../attributes/adapter.js';
import type { RemoteContext } from '../context/remote-context.js';
import { remoteHealthProblem } from '../remote/health.js';
import type { LiftOptions, LiftReport } from './report.js';
import { checkChunk, clearChunk, type CheckedChunk, type ChunkLifted } from './chunk.js';
import type { UnlockChecks } from './candidate.js';
import { blockedPaths } from '../index/units.js';
import { planLift, type LiftCandidate, type LiftPlan } from './plan.js';
import { holdJsonsOverLockedVhds, jsonBackup } from './flat-order.js';
import { deferWhileXoRuns } from './xo-busy.js';
import type { Identity } from '../remote/identity.js';

// Units read, checked and unlocked together: one flag-helper batch, and a bound on what a pass holds in memory.
const CHUNK = 4096;

// The names of the liftable buckets, read before the pass.
export interface LiftableNames {
  namesOf: Map<string, string[]>;
  // For every name, the newest bucket holding it: the path's newest entry, which governs.
  newestDay: Map<string, string>;
  total: number;
}

type EntryRef = { day: string; name: string };

// One pass over the liftable buckets, oldest first, a chunk at a time; each chunk is forgotten while the next unlocks,
// or, in a bucket that may go whole, at the end of the pass with one rename for the bucket.
export class LiftPass {
  // Entries forgotten so far (with dryRun: that would be).
  forgotten = 0;
  readonly #remote: RemoteContext;
  readonly #attributes: AttributesAdapter;
  readonly #options: LiftOptions;
  readonly #report: LiftReport;
  readonly #names: LiftableNames;
  // Entries whose path a newer bucket names too, carried until that newer entry is lifted, and forgotten with it.
  readonly #carried = new Map<string, EntryRef[]>();
  readonly #blocked = new Set<string>();
  #healthChecked = false;
  #done = 0;
  // The chunk unlocked last, forgotten while the next one is unlocked, or after the last one.
  #lastLifted: ChunkLifted | undefined;
  // VM jsons due, lifted at the end of the pass once their flat VHDs are (lift/flat-order.ts), and, in a dry run, the
  // units the pass would have unlocked.
  #held: LiftCandidate[] = [];
  readonly #wouldUnlock = new Set<string>();
  // Per bucket that may be forgotten whole, the names this pass forgets there, and the window records of their units:
  // forgotten at the end of the pass (#forgetDeferred). The buckets known to keep an entry are forgotten chunk by chunk.
  readonly #deferred = new Map<string, Set<string>>();
  #deferredRecords: Identity[] = [];
  readonly #keeping = new Set<string>();
  // How many names each bucket held when the pass listed it.
  readonly #listed = new Map<string, number>();

  constructor(
    remote: RemoteContext,
    attributes: AttributesAdapter,
    options: LiftOptions,
    report: LiftReport,
    names: LiftableNames,
  ) {
    this.#remote = remote;
    this.#attributes = attributes;
    this.#options = options;
    this.#report = report;
    this.#names = names;
  }

  // Stops early when the remote does not look healthy: nothing more is lifted or forgotten.
  async run(liftable: readonly string[]): Promise<void> {
    try {
      if (!(await this.#liftChunks(this.#chunks(liftable)))) return;
      await this.#liftHeld();
      await this.#forgetLast();
    } finally {
      // After a failure too: what the pass unlocked is forgotten, as when every chunk was forgotten on its own.
      await this.#forgetDeferred();
    }
    if (!this.#options.dryRun) for (const day of liftable) await this.#remote.index.removeDayIfEmpty(day);
  }

  *#chunks(liftable: readonly string[]): Generator<{ day: string; names: string[] }> {
    const chunkSize = this.#options.chunkSize ?? CHUNK;
    for (const day of liftable) {
      const own = this.#takeOwnNames(day);
      for (let start = 0; start < own.length; start += chunkSize)
        yield { day, names: own.slice(start, start + chunkSize) };
    }
  }

  // Each chunk is planned and judged while the flag helper clears the chunk before (and the one before that is
  // forgotten), so the main thread's work overlaps the helper's. A chunk is still judged before its own flags are
  // cleared, and is cleared only once the one before is done; nothing started here outlives the call.
  async #liftChunks(chunks: Iterable<{ day: string; names: string[] }>): Promise<boolean> {
    let clearing: Promise<void> = Promise.resolve();
    try {
      for (const { day, names } of chunks) {
        const checked = await this.#checkChunk(day, names);
        await clearing;
        if (checked === undefined) return false;
        clearing = this.#clearChunk(checked, names.length);
        // Awaited above or below; handled now so that failing while the next chunk is examined is no unhandled rejection.
        clearing.catch(() => undefined);
      }
      await clearing;
      return true;
    } catch (error) {
      await clearing.catch(() => undefined);
      throw error;
    }
  }

  // The chunk's candidates judged (lift/candidate.ts), or undefined when the remote does not look healthy.
  async #checkChunk(day: string, chunk: string[]): Promise<CheckedChunk | undefined> {
    const plan = await this.#planChunk(day, chunk);
    let unlock = plan.unlock;
    if (!this.#options.all) {
      // VM jsons wait for the end of the pass, when every flat VHD it lifts is unlocked (lift/flat-order.ts): one
      // look through their VM folder and one flag read then, not one per chunk their backup's units are spread over.
      // XO's lock is asked when a chunk is cleared (#clearChunk), not here: that is the answer that counts.
      unlock = [];
      for (const candidate of plan.unlock)
        (jsonBackup(this.#remote.root, candidate.path) === undefined ? unlock : this.#held).push(candidate);
    }
    if (unlock.length > 0 && !(await this.#remoteLooksHealthy())) return undefined;
    return checkChunk(this.#remote, unlock, this.#report, this.#checks());
  }

  // Clears a checked chunk while forgetting the chunk before. XO's lock is asked first, as late as it can be: the
  // chunk was planned and examined while the chunk before was being cleared; a VM folder XO holds waits for a later
  // pass.
  async #clearChunk(checked: CheckedChunk, names: number, afterFlatVhds = false): Promise<void> {
    const ready = this.#deferWhileXoRuns(checked);
    const { dryRun } = this.#options;
    const forgetLast = (): Promise<void> => this.#forgetLast();
    const options = { dryRun, afterFlatVhds };
    this.#lastLifted = await clearChunk(this.#remote, this.#attributes, ready, options, this.#report, forgetLast);
    // A unit found gone is not among them: its folder may come back, the locked unit in it.
    if (dryRun) for (const { path } of this.#lastLifted.unlocked) this.#wouldUnlock.add(path);
    this.#done += names;
    this.#options.onProgress?.(this.#done, this.#names.total);
  }

  #deferWhileXoRuns({ safe, gone }: CheckedChunk): CheckedChunk {
    if (this.#options.all) return { safe, gone };
    const { deferred } = deferWhileXoRuns(this.#remote.root, [...safe.map((s) => s.candidate), ...gone]);
    if (deferred.length === 0) return { safe, gone };
    this.#report.deferred.push(...deferred.map((candidate) => candidate.path));
    const waits = new Set(deferred);
    return { safe: safe.filter((s) => !waits.has(s.candidate)), gone: gone.filter((c) => !waits.has(c)) };
  }

  #checks(): UnlockChecks {
    return { now: this.#options.now, all: this.#options.all, dryRun: this.#options.dryRun };
  }

  // The bucket's names whose newest entry it holds; the others are carried to their newer entry.
  #takeOwnNames(day: string): string[] {
    const names = this.#names.namesOf.get(day) ?? [];
    this.#names.namesOf.delete(day);
    this.#listed.set(day, names.length);
    const own: string[] = [];
    for (const name of names) {
      if (this.#names.newestDay.get(name) === day) own.push(name);
      else this.#carried.set(name, [...(this.#carried.get(name) ?? []), { day, name }]);
    }
    this.#done += names.length - own.length;
    return own;
  }

  // The jsons, once every chunk is unlocked, a chunk at a time: those whose flat VHDs went too are unlocked now, the
  // others wait for a later pass. The flag helper looks for their VHDs' flags just before it clears each json (J
  // records, lift/flat-order.ts); a dry run, which clears nothing, looks here, past what it would have unlocked.
  async #liftHeld(): Promise<void> {
    const held = this.#held;
    this.#held = [];
    const chunkSize = this.#options.chunkSize ?? CHUNK;
    const { dryRun } = this.#options;
    for (let start = 0; start < held.length; start += chunkSize) {
      let unlock = held.slice(start, start + chunkSize);
      if (dryRun) {
        const jsons = await holdJsonsOverLockedVhds(this.#remote, this.#attributes, unlock, this.#wouldUnlock);
        this.#report.deferred.push(...jsons.held.map((candidate) => candidate.path));
        unlock = jsons.unlock;
      }
      if (unlock.length === 0) continue;
      if (!(await this.#remoteLooksHealthy())) return;
      await this.#clearChunk(await checkChunk(this.#remote, unlock, this.#report, this.#checks()), 0, !dryRun);
    }
  }

  async #planChunk(day: string, chunk: string[]): Promise<LiftPlan> {
    const { index, windowMs } = this.#remote;
    const { now, all } = this.#options;
    const plan = planLift(await index.readEntries(day, chunk), now, windowMs, all, this.#blocked);
    this.#report.unreadableEntries.push(...plan.unreadable.map((u) => path.join(index.folder, u.day, u.name)));
    if (plan.kept > 0 || plan.unreadable.length > 0) this.#keeping.add(day);
    for (const named of blockedPaths(plan.unreadable)) this.#blocked.add(named);
    // Most passes carry nothing: no await a unit then.
    if (this.#carried.size > 0) for (const candidate of plan.unlock) await this.#addCarried(candidate);
    return plan;
  }

  async #addCarried(candidate: LiftCandidate): Promise<void> {
    const older = candidate.entries.flatMap((entry) => this.#carried.get(entry.name) ?? []);
    candidate.entries.push(...older);
    // A governing entry written before its lock (pending) has no identity: an older one's is checked instead.
    candidate.identity ??= await this.#newestIdentity(older);
  }

  async #newestIdentity(older: readonly EntryRef[]): Promise<LiftCandidate['identity']> {
    for (const { day, name } of [...older].sort((a, b) => b.day.localeCompare(a.day))) {
      const [stored] = await this.#remote.index.readEntries(day, [name]);
      if (stored?.entry?.identity !== undefined) return stored.entry.identity;
    }
    return undefined;
  }

  // An unmounted remote looks empty: forgetting entries there would leave the real units locked for good.
  async #remoteLooksHealthy(): Promise<boolean> {
    if (this.#healthChecked) return true;
    const unhealthy = await remoteHealthProblem(this.#remote, this.#attributes);
    if (unhealthy !== undefined) {
      this.#report.failed.push({
        path: this.#remote.root,
        message: `nothing lifted: ${unhealthy} (start the daemon once on it to write the file)`,
      });
      return false;
    }
    this.#healthChecked = true;
    return true;
  }

  // Forgets the chunk unlocked last: the entries in buckets known to keep one now, the others at the end of the pass;
  // a unit's window record once all its entries went. Deferring keeps the order: a crash before the end leaves
  // entries of units already unlocked, which the next pass removes.
  async #forgetLast(): Promise<void> {
    const lifted = this.#lastLifted;
    if (lifted === undefined) return;
    this.#lastLifted = undefined;
    const units = [...lifted.unlocked, ...lifted.gone];
    for (const { entries } of units) {
      this.forgotten += entries.length;
      for (const { name } of entries) this.#carried.delete(name);
    }
    if (this.#options.dryRun) return;
    const now: EntryRef[] = [];
    for (const day of this.#keeping) {
      for (const name of this.#deferred.get(day) ?? []) now.push({ day, name });
      this.#deferred.delete(day);
    }
    const records: Identity[] = [];
    for (const { entries, identity } of units) {
      let later = false;
      for (const entry of entries) {
        if (this.#keeping.has(entry.day)) now.push(entry);
        else {
          later = true;
          this.#deferred.set(entry.day, (this.#deferred.get(entry.day) ?? new Set()).add(entry.name));
        }
      }
      if (identity !== undefined) (later ? this.#deferredRecords : records).push(identity);
    }
    await this.#forget(now, records);
  }

  // A bucket whose every entry listed goes is moved at once (IndexStore.removeDay: one rename, not one an entry);
  // the others lose their entries one by one.
  async #forgetDeferred(): Promise<void> {
    const rest: EntryRef[] = [];
    for (const [day, names] of this.#deferred) {
      const whole = names.size === this.#listed.get(day) && (await this.#remote.index.removeDay(day, names));
      if (!whole) for (const name of names) rest.push({ day, name });
    }
    this.#deferred.clear();
    const records = this.#deferredRecords;
    this.#deferredRecords = [];
    await this.#forget(rest, records);
  }

  async #forget(entries: readonly EntryRef[], records: readonly Identity[]): Promise<void> {
    if (entries.length === 0 && records.length === 0) return;
    await this.#remote.index.removeAll(entries);
    await this.#remote.index.windows.forgetAll(records);
  }
}
