import path from 'node:path';
import type { AttributesAdapter } from '../attributes/adapter.js';
import type { Clock } from '../clock.js';
import type { RemoteContext } from '../context/remote-context.js';
import { AppError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import {
  IMMUTABILITY_FILE,
  ImmutabilityFileError,
  immutabilityStatus,
  writeImmutabilityFile,
  type PlantedEntry,
} from '../remote/immutability-file.js';
import { isUntouchedByXo } from '../remote/root.js';
import { lockSetupFiles, XO_SETUP_FILES } from '../remote/setup-files.js';
import { VERSION } from '../version.js';

// Per remote, what is still to do, with the message last logged for it.
interface Pending {
  marker?: string;
  setup?: string;
}

type Part = keyof Pending;

// immutability.json and XO's set-up files, written and locked when a remote is opened or activated. XO's user can
// write at the root, so a failure there is never fatal (a planted entry would keep the daemon down): it is logged,
// the remote stays protected, and it is tried again at each health check (docs/security.md, "Planted status file").
export class StatusFiles {
  readonly #attributes: AttributesAdapter;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #pending = new Map<RemoteContext, Pending>();
  // Since start, for status.json: planted entries moved aside (security warnings) and failures logged (errors).
  securityWarnings = 0;
  failures = 0;

  constructor(deps: { attributes: AttributesAdapter; clock: Clock; log: Logger }) {
    this.#attributes = deps.attributes;
    this.#clock = deps.clock;
    this.#log = deps.log;
  }

  // The daemon failed to write or lock immutability.json there: its absence does not mean the remote is unmounted.
  markerPending(remote: RemoteContext): boolean {
    return this.#pending.get(remote)?.marker !== undefined;
  }

  // Never throws: a failure is logged and left to retry().
  async write(remote: RemoteContext): Promise<void> {
    await this.#attempt(remote, ['marker', 'setup']);
  }

  // What failed before, tried again; only where XO's files are: an empty root may be the folder under an unmounted
  // remote, where nothing may be written.
  async retry(remote: RemoteContext): Promise<void> {
    const pending = this.#pending.get(remote);
    if (pending === undefined) return;
    if (await isUntouchedByXo(remote.root).catch(() => true)) return;
    await this.#attempt(remote, Object.keys(pending) as Part[]);
  }

  async #attempt(remote: RemoteContext, parts: readonly Part[]): Promise<void> {
    const log = this.#log.child({ remote: remote.id });
    const before = this.#pending.get(remote) ?? {};
    const after: Pending = { ...before };
    for (const part of parts) {
      const problem = part === 'marker' ? await this.#writeMarker(remote, log) : await this.#lockSetup(remote, log);
      if (problem === undefined) {
        delete after[part];
        if (before[part] !== undefined) log.info(`remote ${remote.id}: ${what(part)} now`);
        continue;
      }
      after[part] = problem.message;
      // Once per new problem: tried again every health check.
      if (before[part] === problem.message) continue;
      this.failures++;
      log.error({ code: problem.code, value: problem.value, hint: problem.hint }, problem.message);
    }
    if (after.marker === undefined && after.setup === undefined) this.#pending.delete(remote);
    else this.#pending.set(remote, after);
  }

  async #writeMarker(remote: RemoteContext, log: Logger): Promise<AppError | undefined> {
    const status = immutabilityStatus(remote.durationMs, this.#clock.now(), VERSION);
    const target = path.join(remote.root, IMMUTABILITY_FILE);
    try {
      const { planted } = await writeImmutabilityFile(remote, status, this.#attributes);
      if (planted !== undefined) this.#warnPlanted(planted, log);
      return undefined;
    } catch (error) {
      if (error instanceof ImmutabilityFileError && error.planted !== undefined) this.#warnPlanted(error.planted, log);
      return new AppError(
        'STATUS_FILE_FAILED',
        `remote ${remote.id}: cannot write and lock ${target}: ${(error as Error).message}; its backups are still ` +
          'locked, and this is tried again at each health check',
        {
          value: target,
          hint:
            `check that ${remote.root} is mounted read-write and that nothing but this daemon manages ` +
            `${IMMUTABILITY_FILE} (until it is locked, XO shows no padlock and nothing is lifted there); ` +
            'if something was planted there, find out who can write to the remote',
          cause: error,
        },
      );
    }
  }

  async #lockSetup(remote: RemoteContext, log: Logger): Promise<AppError | undefined> {
    try {
      for (const { path: file, message } of await lockSetupFiles(remote, this.#attributes)) {
        this.securityWarnings++;
        log.warn(
          { path: file, security: true },
          `${file} locked, but it is not as XO writes it: ${message}; find out who can write to the remote`,
        );
      }
      return undefined;
    } catch (error) {
      return new AppError(
        'STATUS_FILE_FAILED',
        `remote ${remote.id}: cannot lock XO's set-up files (${XO_SETUP_FILES.join(', ')}): ` +
          `${(error as Error).message}; its backups are still locked, and this is tried again at each health check`,
        {
          value: remote.root,
          hint:
            `check that ${remote.root} is mounted read-write and on a filesystem that keeps the immutable flag ` +
            '(`xo-immutable-backups check`); if the message names something planted, find out who can write to the remote',
          cause: error,
        },
      );
    }
  }

  #warnPlanted(planted: PlantedEntry, log: Logger): void {
    this.securityWarnings++;
    log.warn(
      { path: planted.path, found: planted.found, movedTo: planted.movedTo, security: true },
      `${planted.path} was ${planted.found}, not the file this daemon writes: moved to ${planted.movedTo} as it ` +
        'was (no link followed) to write a fresh one; find out who can write to the remote',
    );
  }
}

function what(part: Part): string {
  return part === 'marker'
    ? `${IMMUTABILITY_FILE} written and locked`
    : `XO's set-up files (${XO_SETUP_FILES.join(', ')}) locked`;
}
