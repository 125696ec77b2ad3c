import path from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
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
} from './schema.js';

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

// Pure: turns what was read from the file into a Config, or lists every problem at once with its key:
// shape problems (unknown keys, wrong types) and value problems (durations, paths, overlaps) together.
export function validateConfig(raw: unknown): ValidationResult {
  const problems: ConfigProblem[] = checkShape(raw)
    ? []
    : (checkShape.errors ?? []).map((error) => shapeProblem(error, raw));
  const top = isRecord(raw) ? raw : {};
  const text = (value: unknown, fallback: string): string => (typeof value === 'string' ? value : fallback);
  const duration = (key: string, value: string, minimum = 1): number => {
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
  };

  const indexPath = text(top.indexPath, defaults.indexPath);
  if (!path.isAbsolute(indexPath)) {
    problems.push({
      key: 'indexPath',
      value: indexPath,
      message: 'is not an absolute path',
      hint: `write a full path such as "${defaults.indexPath}"`,
    });
  }
  const liftEveryMs = duration('liftEvery', text(top.liftEvery, defaults.liftEvery));
  const rescanEveryMs = duration('rescanEvery', text(top.rescanEvery, defaults.rescanEvery), 1000);
  const jsonSettleMs = duration('jsonSettleTime', text(top.jsonSettleTime, defaults.jsonSettleTime), 1000);
  const maxClockJumpMs = duration('maxClockJump', text(top.maxClockJump, defaults.maxClockJump), 60_000);
  const metricsFile = typeof top.metricsFile === 'string' ? top.metricsFile : undefined;
  if (metricsFile !== undefined && !path.isAbsolute(metricsFile)) {
    problems.push({
      key: 'metricsFile',
      value: metricsFile,
      message: 'is not an absolute path',
      hint: 'write the full path in node_exporter\'s textfile folder, such as "/var/lib/prometheus/node-exporter/xo-immutable-backups.prom"',
    });
  }

  const remotes: RemoteConfig[] = [];
  for (const [id, remote] of Object.entries(isRecord(top.remotes) ? top.remotes : {})) {
    const key = `remotes.${id}`;
    if (!REMOTE_ID.test(id)) {
      problems.push({
        key,
        value: id,
        message: 'is not a usable remote id',
        hint: 'use letters, digits, ".", "_" and "-" only, starting with a letter or digit (the id names a folder of the index)',
      });
    }
    if (!isRecord(remote)) continue;
    const root = typeof remote.root === 'string' ? remote.root : undefined;
    if (root !== undefined && !path.isAbsolute(root)) {
      problems.push({
        key: `${key}.root`,
        value: root,
        message: 'is not an absolute path',
        hint: 'write the full path where the remote is mounted on this server, such as "/srv/backups"',
      });
    } else if (root !== undefined && path.resolve(root) === '/') {
      problems.push({
        key: `${key}.root`,
        value: root,
        message: 'is the filesystem root',
        hint: 'point root at the folder XO uses as the remote',
      });
    }
    const immutabilityDurationMs =
      typeof remote.immutabilityDuration === 'string'
        ? duration(`${key}.immutabilityDuration`, remote.immutabilityDuration, MIN_IMMUTABILITY_MS)
        : 0;
    remotes.push({
      id,
      root: path.resolve(root ?? '/'),
      immutabilityDurationMs,
      rebuildIndexOnStart: remote.rebuildIndexOnStart === true,
    });
  }

  if (path.isAbsolute(indexPath)) {
    for (const remote of remotes) {
      if (
        remote.root !== '/' &&
        (isInside(path.resolve(indexPath), remote.root) || isInside(remote.root, path.resolve(indexPath)))
      ) {
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

  if (problems.length > 0) return { ok: false, problems };
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
      remotes,
    },
  };
}

function shapeProblem(error: ErrorObject, raw: unknown): ConfigProblem {
  const segments = error.instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
  const at = (extra?: string): string =>
    [...segments, ...(extra === undefined ? [] : [extra])].join('.') || '(top level)';
  const value = segments.reduce<unknown>((node, segment) => (isRecord(node) ? node[segment] : undefined), raw);
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return {
        key: at(String(params.missingProperty)),
        value: undefined,
        message: 'is missing',
        hint: requiredHint(String(params.missingProperty)),
      };
    case 'additionalProperties':
      return {
        key: at(String(params.additionalProperty)),
        value: undefined,
        message: 'is not a known setting',
        hint: "check its spelling against config.sample.json or the README's configuration reference",
      };
    case 'enum':
      return {
        key: at(),
        value,
        message: 'is not one of the allowed values',
        hint: `use one of ${JSON.stringify(params.allowedValues)}`,
      };
    case 'minProperties':
      return {
        key: at(),
        value,
        message: 'is empty',
        hint: 'add at least one remote: "remotes": { "main": { "root": "/srv/backups", "immutabilityDuration": "7d" } }',
      };
    case 'type':
      return {
        key: at(),
        value,
        message: `should be ${String(params.type)}`,
        hint: `write a ${String(params.type)} here`,
      };
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
