import type { ErrorObject } from 'ajv';
import { configSchema } from './schema.js';
import { nearestKey } from './suggest.js';

// One thing wrong in the config: its key, what is wrong, the value found and what to write instead.
export interface ConfigProblem {
  key: string;
  message: string;
  value: unknown;
  hint: string;
}

const TOP_KEYS = Object.keys(configSchema.properties);
const REMOTE_KEYS = Object.keys(configSchema.properties.remotes.additionalProperties.properties);
// Written as strings with a unit; a bare number is the usual mistake.
const DURATION_KEYS = new Set(['liftEvery', 'rescanEvery', 'jsonSettleTime', 'maxClockJump', 'immutabilityDuration']);

// Turns one Ajv error into a problem keyed by its dotted path, with a hint an admin can act on.
export function shapeProblem(error: ErrorObject, raw: unknown): ConfigProblem {
  const segments = error.instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
  const params = error.params as Record<string, unknown>;
  const named = namedProperty(error.keyword, params);
  const key = [...segments, ...(named === undefined ? [] : [named])].join('.') || '(top level)';
  const value =
    named === undefined
      ? segments.reduce<unknown>((node, segment) => (isRecord(node) ? node[segment] : undefined), raw)
      : undefined;
  const described = describe(error, params);
  if (error.keyword === 'additionalProperties' && named !== undefined)
    return { key, value, ...described, hint: unknownKeyHint(named, segments.length === 0) };
  const last = segments.at(-1);
  if (error.keyword === 'type' && typeof value === 'number' && last !== undefined && DURATION_KEYS.has(last))
    return {
      key,
      value,
      message: 'is a number, not a duration',
      hint: 'write the duration as a string with its unit, such as "7d" (or "12h", "30m"): a bare number has no unit',
    };
  return { key, value, ...described };
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// The property a missing or unknown key error is about: the problem's key names it.
function namedProperty(keyword: string, params: Record<string, unknown>): string | undefined {
  if (keyword === 'required') return String(params.missingProperty);
  if (keyword === 'additionalProperties') return String(params.additionalProperty);
  return undefined;
}

function describe(error: ErrorObject, params: Record<string, unknown>): { message: string; hint: string } {
  switch (error.keyword) {
    case 'required':
      return { message: 'is missing', hint: requiredHint(String(params.missingProperty)) };
    case 'additionalProperties':
      return {
        message: 'is not a known setting',
        hint: "check its spelling against config.sample.json or the README's configuration reference",
      };
    case 'enum':
      return {
        message: 'is not one of the allowed values',
        hint: `use one of ${JSON.stringify(params.allowedValues)}`,
      };
    case 'minProperties':
      return {
        message: 'is empty',
        hint:
          'add at least one remote: ' +
          '"remotes": { "main": { "root": "/srv/backups", "immutabilityDuration": "7d" } }',
      };
    case 'type':
      return { message: `should be ${String(params.type)}`, hint: `write a ${String(params.type)} here` };
    default:
      return { message: error.message ?? 'is invalid', hint: 'see config.sample.json' };
  }
}

// "did you mean": the nearest key at the same level, else at the other level (a remote's key written at the top, or
// the reverse), else where to look.
function unknownKeyHint(unknown: string, topLevel: boolean): string {
  const usable = (keys: string[]): string[] => keys.filter((k) => k !== '$schema' && k !== 'delayBetweenSizeCheck');
  const [here, there] = topLevel ? [usable(TOP_KEYS), usable(REMOTE_KEYS)] : [usable(REMOTE_KEYS), usable(TOP_KEYS)];
  const near = nearestKey(unknown, here);
  if (near !== undefined) return `did you mean \`${near}\`? (config.sample.json shows every setting)`;
  const elsewhere = nearestKey(unknown, there);
  if (elsewhere !== undefined) {
    const meant = elsewhere === unknown ? `\`${elsewhere}\`` : `did you mean \`${elsewhere}\`? It`;
    return topLevel
      ? `${meant} is a setting of each remote: move it into remotes.<id>`
      : `${meant} is a top-level setting: move it out of the remote, next to "remotes"`;
  }
  return "check its spelling against config.sample.json or the README's configuration reference";
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
