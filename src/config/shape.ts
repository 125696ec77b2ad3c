import type { ErrorObject } from 'ajv';
import type { ConfigProblem } from './validate.js';

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
  return { key, value, ...describe(error, params) };
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
