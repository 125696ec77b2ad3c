import path from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { parseDuration } from './duration.js';
import { configSchema, defaults, MIN_IMMUTABILITY_MS, type Config, type RawConfig } from './schema.js';

export interface ConfigProblem {
  key: string;
  message: string;
  value: unknown;
  hint: string;
}

export type ValidationResult = { ok: true; config: Config } | { ok: false; problems: ConfigProblem[] };

const ajv = new Ajv({ allErrors: true, strict: true, useDefaults: false });
const checkShape = ajv.compile<RawConfig>(configSchema);

const REMOTE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

// Pure: turns what was read from the file into a Config, or lists every problem at once with its key.
export function validateConfig(raw: unknown): ValidationResult {
  if (!checkShape(raw)) {
    return { ok: false, problems: (checkShape.errors ?? []).map((error) => shapeProblem(error, raw)) };
  }
  const problems: ConfigProblem[] = [];
  const duration = (key: string, text: string, minimum = 1): number => {
    const value = parseDuration(text);
    if (value === undefined) {
      problems.push({ key, value: text, message: 'is not a duration', hint: 'write a number and a unit, such as "30s", "15m", "1h" or "7d"' });
      return 0;
    }
    if (value < minimum) {
      problems.push({ key, value: text, message: `is shorter than ${minimum === MIN_IMMUTABILITY_MS ? '1 day' : `${minimum} ms`}`, hint: 'use a longer duration, such as "7d"' });
    }
    return value;
  };

  const indexPath = raw.indexPath ?? defaults.indexPath;
  if (!path.isAbsolute(indexPath)) {
    problems.push({ key: 'indexPath', value: indexPath, message: 'is not an absolute path', hint: `write a full path such as "${defaults.indexPath}"` });
  }
  const liftEveryMs = duration('liftEvery', raw.liftEvery ?? defaults.liftEvery);
  const rescanEveryMs = duration('rescanEvery', raw.rescanEvery ?? defaults.rescanEvery, 1000);
  const jsonSettleMs = duration('jsonSettleTime', raw.jsonSettleTime ?? defaults.jsonSettleTime);

  const remotes = Object.entries(raw.remotes).map(([id, remote]) => {
    const key = `remotes.${id}`;
    if (!REMOTE_ID.test(id)) {
      problems.push({ key, value: id, message: 'is not a usable remote id', hint: 'use letters, digits, ".", "_" and "-" only, starting with a letter or digit (the id names a folder of the index)' });
    }
    if (!path.isAbsolute(remote.root)) {
      problems.push({ key: `${key}.root`, value: remote.root, message: 'is not an absolute path', hint: 'write the full path where the remote is mounted on this server, such as "/srv/backups"' });
    } else if (path.resolve(remote.root) === '/') {
      problems.push({ key: `${key}.root`, value: remote.root, message: 'is the filesystem root', hint: 'point root at the folder XO uses as the remote' });
    }
    return {
      id,
      root: path.resolve(remote.root),
      immutabilityDurationMs: duration(`${key}.immutabilityDuration`, remote.immutabilityDuration, MIN_IMMUTABILITY_MS),
      rebuildIndexOnStart: remote.rebuildIndexOnStart ?? false,
    };
  });

  if (path.isAbsolute(indexPath)) {
    for (const remote of remotes) {
      if (isInside(path.resolve(indexPath), remote.root) || isInside(remote.root, path.resolve(indexPath))) {
        problems.push({
          key: 'indexPath',
          value: indexPath,
          message: `overlaps remote "${remote.id}" (${remote.root})`,
          hint: 'the remote is written by the party the index protects against: keep the index outside every remote, such as "/var/lib/xo-immutable-backups"',
        });
      }
    }
  }
  for (const [i, a] of remotes.entries()) {
    for (const b of remotes.slice(i + 1)) {
      if (isInside(a.root, b.root) || isInside(b.root, a.root)) {
        problems.push({ key: `remotes.${b.id}.root`, value: b.root, message: `overlaps remote "${a.id}" (${a.root})`, hint: 'give each remote its own folder; one remote inside another would be protected twice' });
      }
    }
  }

  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    config: { indexPath: path.resolve(indexPath), liftEveryMs, rescanEveryMs, jsonSettleMs, logLevel: raw.logLevel ?? defaults.logLevel, remotes },
  };
}

// True when `child` is `parent` or lies below it (lexically; the daemon checks real paths again at start).
export function isInside(child: string, parent: string): boolean {
  const relative = path.relative(parent, child);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

function shapeProblem(error: ErrorObject, raw: unknown): ConfigProblem {
  const segments = error.instancePath.split('/').slice(1).map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
  const at = (extra?: string): string => [...segments, ...(extra === undefined ? [] : [extra])].join('.') || '(top level)';
  const value = segments.reduce<unknown>((node, segment) => (isRecord(node) ? node[segment] : undefined), raw);
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return { key: at(String(params.missingProperty)), value: undefined, message: 'is missing', hint: requiredHint(String(params.missingProperty)) };
    case 'additionalProperties':
      return { key: at(String(params.additionalProperty)), value: undefined, message: 'is not a known setting', hint: 'check its spelling against config.sample.json or the README\'s configuration reference' };
    case 'enum':
      return { key: at(), value, message: 'is not one of the allowed values', hint: `use one of ${JSON.stringify(params.allowedValues)}` };
    case 'minProperties':
      return { key: at(), value, message: 'is empty', hint: 'add at least one remote: "remotes": { "main": { "root": "/srv/backups", "immutabilityDuration": "7d" } }' };
    case 'type':
      return { key: at(), value, message: `should be ${String(params.type)}`, hint: `write a ${String(params.type)} here` };
    default:
      return { key: at(), value, message: error.message ?? 'is invalid', hint: 'see config.sample.json' };
  }
}

function requiredHint(property: string): string {
  switch (property) {
    case 'remotes':
      return 'add "remotes": { "<id>": { "root": "/srv/backups", "immutabilityDuration": "7d" } }';
    case 'root':
      return 'add the absolute path where this remote is mounted on this server';
    case 'immutabilityDuration':
      return 'add how long backups stay immutable, such as "7d" (at least "1d")';
    default:
      return 'see config.sample.json';
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
