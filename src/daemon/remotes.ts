import { lstat, stat } from 'node:fs/promises';
import path from 'node:path';
import type { AttributesAdapter } from '../attributes/adapter.js';
import { selfTestRemote } from '../attributes/selftest.js';
import type { Clock } from '../clock.js';
import type { Config, RemoteConfig } from '../config/schema.js';
import { openRemoteContext } from '../context/open.js';
import type { RemoteContext } from '../context/remote-context.js';
import type { CapLevel } from '../caps.js';
import { AppError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { isInside, realpathOfNearest } from '../paths.js';
import { IMMUTABILITY_FILE } from '../remote/immutability-file.js';
import { isKeyRefusal, readingOf } from '../remote/encryption.js';
import { isUntouchedByXo } from '../remote/root.js';
import type { RemotePauses } from './pauses.js';
import type { Service } from './service.js';
import type { StatusFiles } from './status-files.js';

// Opens every configured remote at start: each check that can fail runs before anything watches or locks, and a
// remote that fails one stops the daemon; but a key file refused stops only its remote, unless it stops them all, and
// immutability.json (at a root XO's user writes) is never a reason to stop (daemon/status-files.ts).
export class RemoteSet implements Service {
  readonly name = 'remotes';
  readonly #config: Config;
  readonly #attributes: AttributesAdapter;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #list: RemoteContext[] = [];
  // The device each root was on when opened: another one later means the remote was mounted again.
  readonly #devices = new Map<RemoteContext, number>();

  readonly #pauses: RemotePauses;
  readonly #statusFiles: StatusFiles;
  readonly #activations = new Map<RemoteContext, Promise<boolean>>();
  // Remotes this daemon watches for the first time: what was there already is dated by its name (protect/arrival.ts).
  readonly #firstStarts = new Set<RemoteContext>();

  constructor(deps: {
    config: Config;
    attributes: AttributesAdapter;
    clock: Clock;
    log: Logger;
    pauses: RemotePauses;
    statusFiles: StatusFiles;
  }) {
    this.#config = deps.config;
    this.#pauses = deps.pauses;
    this.#statusFiles = deps.statusFiles;
    this.#attributes = deps.attributes;
    this.#clock = deps.clock;
    this.#log = deps.log;
  }

  get list(): readonly RemoteContext[] {
    return this.#list;
  }

  isFirstStart(remote: RemoteContext): boolean {
    return this.#firstStarts.has(remote);
  }

  deviceAtOpen(remote: RemoteContext): number | undefined {
    return this.#devices.get(remote);
  }

  async start(): Promise<void> {
    const refused: AppError[] = [];
    for (const remote of this.#config.remotes) {
      const context = await this.#open(remote, refused);
      this.#list.push(context);
      this.#devices.set(context, (await stat(context.realRoot)).dev);
    }
    // A daemon that protects nothing must not look started (an admin with one remote sees it fail in systemctl).
    if (refused.length === this.#list.length && refused[0] !== undefined) throw refused[0];
  }

  async stop(): Promise<void> {}

  async #open(remote: RemoteConfig, refused: AppError[]): Promise<RemoteContext> {
    const log = this.#log.child({ remote: remote.id });
    const { context, refusal } = await this.#openContext(remote);
    await this.#assertIndexOutside(context);
    await this.#assertMounted(context);
    await selfTestRemote(context, this.#attributes);
    await context.index.open();
    const watching = await context.index.windows.watchSince(this.#clock.now());
    context.watchedSince = watching.since;
    if (watching.first) this.#firstStarts.add(context);
    log.info(
      { root: remote.root, immutabilityDurationMs: remote.immutabilityDurationMs, index: context.index.folder },
      `remote ${remote.id} passed its start-up checks`,
    );
    if (refusal !== undefined) refused.push(this.#refuseKey(context, refusal, log));
    else if (await isUntouchedByXo(context.root)) this.#waitForXo(context, log);
    else await this.#statusFiles.write(context);
    // Before catch-up and lift, so that units the index lost track of are lifted when their datetime says so.
    if (remote.rebuildIndexOnStart) await this.#rebuildIndex(context, log);
    // Capped only now: a rebuild is never capped (it is how units locked without an entry get theirs back), so a
    // remote already at its cap still starts, and says so.
    context.index.entries.listen((level, previous, count) =>
      logIndexCap(log, context.index.entries.max, level, previous, count),
    );
    await context.index.countForCap();
    return context;
  }

  // Opened as an encrypted remote without its key file until the key reads it (#activate): nothing is locked or
  // written there while paused, and the lift loop skips it (daemon/lift-loop.ts).
  async #openContext(remote: RemoteConfig): Promise<{ context: RemoteContext; refusal?: AppError }> {
    try {
      return { context: await openRemoteContext(remote, this.#config.indexPath) };
    } catch (error) {
      if (!isKeyRefusal(error)) throw error;
      const keyless = { ...remote, encryptionKeyFile: undefined };
      return { context: await openRemoteContext(keyless, this.#config.indexPath), refusal: error };
    }
  }

  // A new remote is protected once XO has written there, and one refused for its key file once the key reads it: its
  // marker is written, and encryption read again (XO may just have set it up). True when the remote is protected (now
  // or already).
  activateIfWritten(remote: RemoteContext): Promise<boolean> {
    if (!this.#pauses.isPaused(remote)) return Promise.resolve(true);
    if (!this.#pauses.awaitsActivation(remote)) return Promise.resolve(false);
    let activation = this.#activations.get(remote);
    if (activation === undefined) {
      activation = this.#activate(remote).finally(() => this.#activations.delete(remote));
      this.#activations.set(remote, activation);
    }
    return activation;
  }

  async #activate(remote: RemoteContext): Promise<boolean> {
    if (await isUntouchedByXo(remote.root)) return false;
    const log = this.#log.child({ remote: remote.id });
    const config = this.#config.remotes.find((r) => r.id === remote.id) ?? remote;
    try {
      Object.assign(remote, await readingOf(config, remote));
    } catch (error) {
      if (!isKeyRefusal(error)) throw error;
      // A wrong key leaves the remote paused and unhealthy, nothing written there; the other remotes go on.
      this.#refuseKey(remote, error, log);
      return false;
    }
    const keyFixed = this.#pauses.why(remote)?.keyRefused === true;
    // Protected even when immutability.json could not be written: that is logged, and tried again.
    await this.#statusFiles.write(remote);
    this.#pauses.resume(remote);
    const written = this.#statusFiles.markerPending(remote) ? '' : ` ${IMMUTABILITY_FILE} written,`;
    log.info(
      { encrypted: remote.encrypted },
      keyFixed
        ? `the key file of remote ${remote.id} is accepted now:${written} protecting it from now on`
        : `XO has written to remote ${remote.id}:${written} protecting it from now on`,
    );
    return true;
  }

  // Logged once per new problem (the key is looked at again on every event and health check); never the key itself.
  #refuseKey(remote: RemoteContext, error: AppError, log: Logger): AppError {
    const problem = `${error.code}: ${error.message}; ${error.hint}`;
    const before = this.#pauses.why(remote);
    if (before?.problem === problem) return error;
    const since = before?.keyRefused === true ? before.since : new Date(this.#clock.now()).toISOString();
    this.#pauses.pause(remote, { problem, since, waitingForXo: false, keyRefused: true });
    log.error(
      { code: error.code, value: error.value, hint: error.hint },
      `remote ${remote.id} is NOT protected: ${error.message}; its key file is read again at each health check`,
    );
    return error;
  }

  #waitForXo(remote: RemoteContext, log: Logger): void {
    const problem =
      `${remote.root} holds nothing XO wrote yet; ${IMMUTABILITY_FILE} is written, and backups protected, ` +
      'once XO has written there (so that XO can still set the remote up, with encryption or not)';
    this.#pauses.pause(remote, { problem, since: new Date(this.#clock.now()).toISOString(), waitingForXo: true });
    log.warn({ root: remote.root }, `remote ${remote.id} is new: ${problem}`);
  }

  async #assertIndexOutside(remote: RemoteContext): Promise<void> {
    const { indexPath } = this.#config;
    if (!isInside(await realpathOfNearest(indexPath), remote.realRoot)) return;
    throw new AppError(
      'CONFIG_INVALID',
      `indexPath ${indexPath} lies inside remote "${remote.id}" (${remote.realRoot}) once links are resolved`,
      {
        value: indexPath,
        hint: 'the remote is written by the party the index protects against: move indexPath outside every remote',
      },
    );
  }

  // A remote protected before always has its immutability.json: without it, this is the empty folder of an unmounted
  // remote, and nothing must be written there. Anything at the name counts (a link planted there is moved aside later).
  async #assertMounted(remote: RemoteContext): Promise<void> {
    const days = await remote.index.listDays();
    if (days.length === 0 || (await hasEntry(path.join(remote.root, IMMUTABILITY_FILE)))) return;
    throw new AppError(
      'REMOTE_NOT_FOUND',
      `Remote "${remote.id}": ${remote.root} has no ${IMMUTABILITY_FILE}, ` +
        `yet the index holds entries for it (${days.length} day(s)): it looks unmounted`,
      {
        value: remote.root,
        hint: `mount the remote; if it really is a new, empty remote, move ${remote.index.folder} away first`,
      },
    );
  }

  async #rebuildIndex(remote: RemoteContext, log: Logger): Promise<void> {
    // Imported when a remote asks for it (rebuildIndexOnStart): not part of every start.
    const { rebuildIndex } = await import('../rebuild/rebuild.js');
    const report = await rebuildIndex(remote, this.#attributes, {
      importFrom: [this.#config.indexPath],
      now: this.#clock.now(),
    });
    log.info(
      {
        indexed: report.indexed.length,
        imported: report.imported,
        undated: report.undated,
        foldersScanned: report.foldersScanned,
      },
      `rebuilt the index of remote ${remote.id}: ${report.indexed.length} unit(s) had no entry`,
    );
    for (const undated of report.undated)
      log.warn(
        { path: undated },
        `immutable unit ${undated} has no datetime in its name or an alias; ` +
          'not indexed, lift it by hand when it is no longer needed',
      );
  }
}

// As existsSync, but a link counts whatever it points to.
function hasEntry(file: string): Promise<boolean> {
  return lstat(file).then(
    () => true,
    () => false,
  );
}

// Once per crossing: 80% of maxIndexEntries, the cap, and back below each.
function logIndexCap(log: Logger, max: number, level: CapLevel, previous: CapLevel, count: number): void {
  const fields = { indexEntries: count, maxIndexEntries: max, cap: 'maxIndexEntries' };
  if (level === 'reached')
    log.error(
      fields,
      `the index holds ${count} entries, the cap (maxIndexEntries ${max}): new units are still locked but get no ` +
        'entry, so lift will never unlock them; look for folders nobody made (someone holding XO credentials?), ' +
        'remove them or raise maxIndexEntries, then run `xo-immutable-backups rebuild-index`',
    );
  else if (level === 'near' && previous === 'below')
    log.warn(
      fields,
      `the index holds ${count} entries, ${Math.round((count / max) * 100)}% of the cap (maxIndexEntries ${max}): ` +
        'at the cap new units are locked without an entry and stay locked until an admin acts',
    );
  else
    log.info(
      fields,
      `the index holds ${count} entries, below ${level === 'near' ? 'the cap' : '80% of the cap'} ` +
        `(maxIndexEntries ${max}) again`,
    );
}
