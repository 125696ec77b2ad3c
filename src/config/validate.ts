import path from 'node:path';
import { Ajv } from 'ajv';
import { parseDuration } from './duration.js';
import { isInside } from '../paths.js';
import {
  configSchema,
  defaults,
  MIN_IMMUTABILITY_MS,
  type Config,
  type LogLevel,
  type RawConfig,
  type RemoteConfig,
  type WindowStart,
} from './schema.js';
import { isRecord, shapeProblem, type ConfigProblem } from './shape.js';

export type ValidationResult = { ok: true; config: Config } | { ok: false; problems: ConfigProblem[] };

// The schema is ours and constant: checking it against JSON Schema's meta-schema compiled that meta-schema at every
// start (two thirds of the compile, docs/dev/performance-history.md "Lift (session 10)");
// test/config/validate.test.ts checks it.
const ajv = new Ajv({ allErrors: true, strict: true, useDefaults: false, validateSchema: false });
const checkShape = ajv.compile<RawConfig>(configSchema);

const REMOTE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

// Pure: turns what was read from the file into a Config, or lists every problem at once with its key:
// shape problems (unknown keys, wrong types) and value problems (durations, paths, overlaps) together.
export function validateConfig(raw: unknown): ValidationResult {
  const problems: ConfigProblem[] = checkShape(raw)
    ? []
    : (checkShape.errors ?? []).map((error) => shapeProblem(error, raw));
  const top = isRecord(raw) ? raw : {};
  const indexPath = text(top.indexPath, defaults.indexPath);
  requireAbsolute(problems, 'indexPath', indexPath, `write a full path such as "${defaults.indexPath}"`);
  const liftEveryMs = readDuration(problems, 'liftEvery', text(top.liftEvery, defaults.liftEvery));
  const rescanEveryMs = readDuration(problems, 'rescanEvery', text(top.rescanEvery, defaults.rescanEvery), 1000);
  const jsonSettleMs = readDuration(
    problems,
    'jsonSettleTime',
    text(top.jsonSettleTime, defaults.jsonSettleTime),
    1000,
  );
  const maxClockJumpMs = readDuration(problems, 'maxClockJump', text(top.maxClockJump, defaults.maxClockJump), 60_000);
  const metricsFile = typeof top.metricsFile === 'string' ? top.metricsFile : undefined;
  requireAbsolute(
    problems,
    'metricsFile',
    metricsFile,
    "write the full path in node_exporter's textfile folder, " +
      'such as "/var/lib/prometheus/node-exporter/xo-immutable-backups.prom"',
  );
  const protectChains = typeof top.protectChains === 'boolean' ? top.protectChains : defaults.protectChains;
  const windowStart = top.windowStart === 'name' ? 'name' : defaults.windowStart;
  const remotes = readRemotes(problems, isRecord(top.remotes) ? top.remotes : {}, { protectChains, windowStart });
  problems.push(...indexOverlaps(indexPath, remotes), ...remoteOverlaps(remotes));

  if (problems.length > 0) return { ok: false, problems };
  const warnings = ignoredKeyWarnings(top);
  const logLevel = (typeof top.logLevel === 'string' ? top.logLevel : defaults.logLevel) as LogLevel;
  return {
    ok: true,
    config: {
      indexPath: path.resolve(indexPath),
      liftEveryMs,
      rescanEveryMs,
      jsonSettleMs,
      maxClockJumpMs,
      metricsFile,
      logLevel,
      protectChains,
      remotes,
      warnings,
    },
  };
}

// Keys of the prior art's config that mean nothing here: accepted, so a migrated config starts, and named.
function ignoredKeyWarnings(top: Record<string, unknown>): string[] {
  const remotes = isRecord(top.remotes) ? top.remotes : {};
  return Object.entries(remotes)
    .filter(([, remote]) => isRecord(remote) && remote.delayBetweenSizeCheck !== undefined)
    .map(
      ([id]) =>
        `remotes.${id}.delayBetweenSizeCheck is ignored (a setting of @xen-orchestra/immutable-backups): ` +
        'a backup counts as complete when its json does, not when file sizes stop changing; remove the key',
    );
}

function text(value: unknown, fallback: string): string {
  return typeof value === 'string' ? value : fallback;
}

// A duration in ms; a problem is recorded when it cannot be read (0 then) or is under `minimum`.
function readDuration(problems: ConfigProblem[], key: string, value: string, minimum = 1): number {
  const parsed = parseDuration(value);
  if (parsed === undefined) {
    problems.push({
      key,
      value,
      message: 'is not a duration',
      hint: 'write a number and a unit, such as "30s", "15m", "1h" or "7d"',
    });
    return 0;
  }
  if (parsed < minimum) {
    problems.push({
      key,
      value,
      message: `is shorter than ${minimum === MIN_IMMUTABILITY_MS ? '1 day' : `${minimum} ms`}`,
      hint: 'use a longer duration, such as "7d"',
    });
  }
  return parsed;
}

// A path that must be absolute; undefined: not set.
function requireAbsolute(problems: ConfigProblem[], key: string, value: string | undefined, hint: string): void {
  if (value !== undefined && !path.isAbsolute(value))
    problems.push({ key, value, message: 'is not an absolute path', hint });
}

// `inherited`: the top-level settings a remote takes unless it sets its own.
function readRemotes(
  problems: ConfigProblem[],
  raw: Record<string, unknown>,
  inherited: { protectChains: boolean; windowStart: WindowStart },
): RemoteConfig[] {
  const remotes: RemoteConfig[] = [];
  for (const [id, remote] of Object.entries(raw)) {
    const key = `remotes.${id}`;
    if (!REMOTE_ID.test(id)) {
      problems.push({
        key,
        value: id,
        message: 'is not a usable remote id',
        hint:
          'use letters, digits, ".", "_" and "-" only, starting with a letter or digit ' +
          '(the id names a folder of the index)',
      });
    }
    if (!isRecord(remote)) continue;
    const root = typeof remote.root === 'string' ? remote.root : undefined;
    checkRoot(problems, `${key}.root`, root);
    const immutabilityDurationMs =
      typeof remote.immutabilityDuration === 'string'
        ? readDuration(problems, `${key}.immutabilityDuration`, remote.immutabilityDuration, MIN_IMMUTABILITY_MS)
        : 0;
    remotes.push({
      id,
      root: path.resolve(root ?? '/'),
      immutabilityDurationMs,
      windowStart:
        remote.windowStart === 'name' || remote.windowStart === 'arrival' ? remote.windowStart : inherited.windowStart,
      rebuildIndexOnStart: remote.rebuildIndexOnStart === true,
      maxWatchedFolders: readCap(problems, `${key}.maxWatchedFolders`, remote.maxWatchedFolders, 'maxWatchedFolders'),
      maxIndexEntries: readCap(problems, `${key}.maxIndexEntries`, remote.maxIndexEntries, 'maxIndexEntries'),
      protectChains: typeof remote.protectChains === 'boolean' ? remote.protectChains : inherited.protectChains,
      ...keyFileOf(problems, `${key}.encryptionKeyFile`, remote.encryptionKeyFile),
    });
  }
  return remotes;
}

// Absolute, and never inside a remote (remoteOverlaps): whoever writes the remote must not choose the key.
function keyFileOf(problems: ConfigProblem[], key: string, value: unknown): { encryptionKeyFile?: string } {
  if (typeof value !== 'string') return {};
  requireAbsolute(
    problems,
    key,
    value,
    'write the full path of a root-only file outside every remote, such as "/etc/xo-immutable-backups/main.key"',
  );
  return { encryptionKeyFile: path.resolve(value) };
}

// A cap is a whole number of at least 1; a wrong type is already reported by the shape check (0 then).
function readCap(
  problems: ConfigProblem[],
  key: string,
  value: unknown,
  name: 'maxWatchedFolders' | 'maxIndexEntries',
): number {
  if (value === undefined) return defaults[name];
  if (typeof value !== 'number') return 0;
  if (Number.isSafeInteger(value) && value >= 1) return value;
  problems.push({
    key,
    value,
    message: 'is not a whole number of at least 1',
    hint: `write a count such as ${defaults[name]} (the default); remove the key to use the default`,
  });
  return 0;
}

function checkRoot(problems: ConfigProblem[], key: string, root: string | undefined): void {
  requireAbsolute(
    problems,
    key,
    root,
    'write the full path where the remote is mounted on this server, such as "/srv/backups"',
  );
  if (root !== undefined && path.isAbsolute(root) && path.resolve(root) === '/')
    problems.push({
      key,
      value: root,
      message: 'is the filesystem root',
      hint: 'point root at the folder XO uses as the remote',
    });
}

// The remote is written by the party the index protects against: the index must stay outside every remote.
function indexOverlaps(indexPath: string, remotes: readonly RemoteConfig[]): ConfigProblem[] {
  if (!path.isAbsolute(indexPath)) return [];
  const index = path.resolve(indexPath);
  return remotes
    .filter((remote) => remote.root !== '/' && (isInside(index, remote.root) || isInside(remote.root, index)))
    .map((remote) => ({
      key: 'indexPath',
      value: indexPath,
      message: `overlaps remote "${remote.id}" (${remote.root})`,
      hint:
        'the remote is written by the party the index protects against: ' +
        'keep the index outside every remote, such as "/var/lib/xo-immutable-backups"',
    }));
}

function remoteOverlaps(remotes: readonly RemoteConfig[]): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const a of remotes)
    for (const b of remotes)
      if (a.encryptionKeyFile !== undefined && b.root !== '/' && isInside(a.encryptionKeyFile, b.root))
        problems.push({
          key: `remotes.${a.id}.encryptionKeyFile`,
          value: a.encryptionKeyFile,
          message: `lies inside remote "${b.id}" (${b.root})`,
          hint: 'keep the key file outside every remote, such as in /etc/xo-immutable-backups/, owned by root, mode 0600',
        });
  for (const [i, a] of remotes.entries()) {
    for (const b of remotes.slice(i + 1)) {
      if (a.root !== '/' && b.root !== '/' && (isInside(a.root, b.root) || isInside(b.root, a.root))) {
        problems.push({
          key: `remotes.${b.id}.root`,
          value: b.root,
          message: `overlaps remote "${a.id}" (${a.root})`,
          hint: 'give each remote its own folder; one remote inside another would be protected twice',
        });
      }
    }
  }
  return problems;
}
