import { lstatSync } from 'node:fs';
import type { Clock } from '../clock.js';
import { yieldIfDue } from '../concurrency.js';
import type { RemoteContext } from '../context/remote-context.js';
import type { Logger } from '../log/logger.js';
import type { Urgency } from '../protect/scheduler.js';
import { errnoCode } from '../errors.js';
import { withHeldRemote } from '../remote/held.js';
import { findLeafFolders, type FoundLeaf } from '../remote/scan.js';
import { VERSION } from '../version.js';
import { Periodic } from './periodic.js';
import type { ProtectionService } from './protection.js';
import type { ProvenService } from './proven.js';
import type { RemoteSet } from './remotes.js';
import type { Service } from './service.js';
import type { WatchService } from './watchers.js';

export interface RescanDeps {
  remotes: RemoteSet;
  protection: ProtectionService;
  watchers: WatchService;
  proven: ProvenService;
  clock: Clock;
  log: Logger;
  everyMs: number;
}

// Level-triggered protection: every folder of every remote reconciled at start (the catch-up) and again periodically
// (the full proof), so a lost event costs latency, never protection.
export class RescanService implements Service {
  readonly name = 'rescan';
  readonly #deps: RescanDeps;
  readonly #periodic: Periodic;
  #stopped = false;
  #firstProof: Promise<void> | undefined;

  constructor(deps: RescanDeps) {
    this.#deps = deps;
    this.#periodic = new Periodic(
      deps.everyMs,
      async () => this.#fullProof('periodic rescan'),
      () => undefined,
    );
  }

  // The catch-up: backups written while the daemon was down get locked before start() returns. It skips backups
  // proven before the stop; the full proof that follows in the background does not.
  async start(): Promise<void> {
    const { protection, clock, log, remotes } = this.#deps;
    const started = clock.now();
    await this.#rescan('event', true);
    await protection.idle();
    if (this.#stopped) return;
    // Since the scheduler started: the watchers' first listings already enqueue folders and may lock backups.
    const locked = protection.scheduler?.record.counters.backupsLocked ?? 0;
    const count = remotes.list.length;
    log.info(
      {
        remotes: remotes.list.map((r) => r.id),
        backupsLocked: locked,
        startupMs: clock.now() - started,
        version: VERSION,
      },
      `protecting ${count} remote${count === 1 ? '' : 's'}; start-up catch-up locked ${locked} backup(s)`,
    );
    this.#sayPastWindow();
    this.#firstProof = this.#fullProof('after start-up');
    this.#periodic.arm();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#periodic.stop();
    await this.#firstProof;
  }

  // One remote listed again: 'event' then 'scan' on the same folder is a full proof, right away. The folders changed
  // last come first: after a stop or an outage, what XO wrote meanwhile is locked before the rest is looked at again.
  async rescanRemote(remote: RemoteContext, ...urgencies: Urgency[]): Promise<void> {
    await this.rescanFolder(remote, '', ...urgencies);
  }

  // The same for the leaves under one structural folder (relative to the root; '' for the whole remote).
  async rescanFolder(remote: RemoteContext, from: string, ...urgencies: Urgency[]): Promise<void> {
    const linked: FoundLeaf[] = [];
    const leaves = await this.#listLeaves(remote, from, linked);
    // A symbolic link where XO writes a folder is looked at too, never watched: its look refuses it, and says so.
    for (const leaf of [...leaves, ...linked])
      for (const urgency of urgencies) this.#deps.protection.enqueue({ remote, ...leaf }, urgency);
  }

  // Every leaf folder, watched from now on (the watcher leaves its first listing to this scan), newest change first.
  async #listLeaves(remote: RemoteContext, from: string, linked?: FoundLeaf[]): Promise<FoundLeaf[]> {
    const found = await withHeldRemote(remote, (held) => findLeafFolders(held, from, linked)).catch(
      (error: unknown) => {
        // The root gone since the health check looked: nothing to list; the next check pauses the remote.
        if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') return [];
        throw error;
      },
    );
    const leaves = await newestFirst(found);
    this.#deps.watchers.adopt(remote, leaves);
    return leaves;
  }

  // On a remote's first start, what was there already is dated by its name: say how many backups stay unlocked.
  #sayPastWindow(): void {
    const { protection, remotes, log } = this.#deps;
    for (const remote of remotes.list) {
      if (!remotes.isFirstStart(remote)) continue;
      const backups = protection.scheduler?.facts.count('pastWindow', remote.root, true) ?? 0;
      log.info(
        { remote: remote.id, backups, windowStart: remote.windowStart },
        `remote ${remote.id} is watched for the first time: ${backups} backup(s) already past their window by name ` +
          'are left unlocked; every backup arriving from now on is locked for its whole window' +
          (remote.windowStart === 'name' ? '' : ' from its arrival'),
      );
    }
  }

  // Said at every start: XO cannot restore a locked flat VHD in place; stage-restore copies one out (docs/operations.md).
  #warnFlatVhds(): void {
    const { protection, remotes, log } = this.#deps;
    for (const remote of remotes.list) {
      const vms = protection.scheduler?.facts.count('flatVhds', remote.root) ?? 0;
      if (vms === 0) continue;
      log.warn(
        { remote: remote.id, vms },
        `remote ${remote.id}: ${vms} VM folder(s) store flat .vhd files, which XO cannot restore while they are ` +
          'locked (it opens them read-write); set the remote to store backups as multiple data blocks in XO; to ' +
          'restore meanwhile, copy a backup out with `xo-immutable-backups stage-restore` (docs/operations.md)',
      );
    }
  }

  // `atStart`: a remote not protected yet (new, or its key refused) still gets its folders watched, as the watcher
  // would have on its own, so that their events can activate it.
  async #rescan(urgency: Urgency, atStart = false): Promise<void> {
    // A remote gone away is skipped; a new one is looked at once XO has written there.
    for (const remote of this.#deps.remotes.list)
      if (await this.#deps.remotes.activateIfWritten(remote)) await this.rescanRemote(remote, urgency);
      else if (atStart)
        await this.#listLeaves(remote, '').catch((err: unknown) =>
          this.#deps.log.warn({ err, remote: remote.id }, 'could not list the remote; the periodic rescan will'),
        );
  }

  // Every retained backup looked at again, proven or not, behind whatever events bring: catches a unit unlocked by
  // hand behind an untouched json, and one indexed as locked whose flag is off (its flag is read, protect/flag-proof.ts).
  // Only the listing is awaited: stop() does not wait for the proof to finish.
  async #fullProof(why: string): Promise<void> {
    const { protection, proven, clock, log } = this.#deps;
    const started = clock.now();
    try {
      await this.#rescan('scan');
    } catch (err) {
      log.error({ err }, `${why}: listing the remotes failed`);
      return;
    }
    void protection
      .idle()
      .then(() => {
        if (this.#stopped) return;
        const ms = clock.now() - started;
        log.info({ ms, proven: proven.count() }, `full proof (${why}) done: every retained backup was checked`);
        if (why === 'after start-up') this.#warnFlatVhds();
      })
      .catch(() => undefined);
  }
}

// The last changed first, by the folder's ctime (a file added, renamed or removed in it; no one on the remote can set
// it back); one that cannot be read last (the reconcile says why).
async function newestFirst(leaves: readonly FoundLeaf[]): Promise<FoundLeaf[]> {
  const changed = new Map<FoundLeaf, number>();
  for (const leaf of leaves) {
    await yieldIfDue();
    changed.set(leaf, changedAt(leaf.path));
  }
  return [...leaves].sort((a, b) => changed.get(b)! - changed.get(a)!);
}

function changedAt(folder: string): number {
  try {
    return lstatSync(folder, { throwIfNoEntry: false })?.ctimeMs ?? 0;
  } catch {
    return 0;
  }
}
