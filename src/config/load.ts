import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import Conf from 'conf';
import { AppError, errnoCode } from '../errors.js';
import { positionAt, trailingCommaOffset } from './json-syntax.js';
import type { Config } from './schema.js';
import type { ConfigProblem } from './shape.js';
import { validateConfig } from './validate.js';

export const DEFAULT_CONFIG_PATH = '/etc/xo-immutable-backups/config.json';

// conf gets no defaults and no schema, so it never writes the admin's file back.
export function loadConfig(file: string): Config {
  const absolute = path.resolve(file);
  try {
    if (!statSync(absolute).isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
    accessSync(absolute, constants.R_OK);
  } catch (error) {
    const errno = errnoCode(error) ?? 'EUNKNOWN';
    const missing = errno === 'ENOENT';
    throw new AppError(
      missing ? 'CONFIG_NOT_FOUND' : 'CONFIG_UNREADABLE',
      `Config file ${absolute} ${missing ? 'does not exist' : `cannot be read (${errno})`}`,
      {
        value: absolute,
        hint: missing
          ? `copy config.sample.json to ${DEFAULT_CONFIG_PATH} and edit it, or pass --config FILE`
          : errno === 'EACCES' || errno === 'EPERM'
            ? "run it as root (sudo): the config is root's and may be private (0600)"
            : errno === 'EISDIR'
              ? 'give the path of the file itself, not of its folder'
              : 'check the path and its permissions',
        cause: error,
      },
    );
  }
  let raw: unknown;
  try {
    const store = new Conf({
      cwd: path.dirname(absolute),
      configName: path.basename(absolute),
      fileExtension: '',
      projectName: 'xo-immutable-backups',
      accessPropertiesByDotNotation: false,
      clearInvalidConfig: false,
    });
    raw = { ...store.store };
  } catch (error) {
    const syntax = describeJsonError((error as Error).message, readFileSync(absolute, 'utf8'));
    throw new AppError('CONFIG_UNREADABLE', `Config file ${absolute} is not valid JSON${syntax.where}`, {
      value: absolute,
      hint: syntax.hint,
      cause: error,
    });
  }
  const result = validateConfig(raw);
  if (!result.ok) throw configInvalid(absolute, result.problems);
  return result.config;
}

// A trailing comma is named as such, at the comma (JSON.parse names the bracket after it); anything else where
// JSON.parse found it.
export function describeJsonError(message: string, text: string): { where: string; hint: string } {
  const comma = trailingCommaOffset(text);
  const offset = errorOffset(message, text);
  if (comma !== undefined && (offset === undefined || comma < offset)) {
    const { line, column } = positionAt(text, comma);
    return {
      where: ` at line ${line}, column ${column}: a trailing comma after the last item (JSON allows none)`,
      hint: `remove the comma at line ${line}, column ${column}`,
    };
  }
  return {
    where: jsonErrorLocation(message, text),
    hint: 'fix the JSON syntax (a missing comma or quote is the usual cause); config.sample.json shows the layout',
  };
}

// JSON.parse names a character position ("in JSON at position 62"), useless in an editor: " at line L, column C: what".
export function jsonErrorLocation(message: string, text: string): string {
  const offset = errorOffset(message, text);
  const what = message.replace(/ in JSON at position \d+( \(line \d+ column \d+\))?$/, '');
  if (offset === undefined) return `: ${what}`;
  const { line, column } = positionAt(text, offset);
  return ` at line ${line}, column ${column}: ${what}`;
}

function errorOffset(message: string, text: string): number | undefined {
  const position = /in JSON at position (\d+)/.exec(message);
  if (position) return Number(position[1]);
  return /Unexpected end of JSON input/.test(message) ? text.length : undefined;
}

export function configInvalid(file: string, problems: ConfigProblem[]): AppError {
  const lines = problems.map(
    (p) => `  ${p.key}: ${p.message}${p.value === undefined ? '' : ` (is ${JSON.stringify(p.value)})`}; ${p.hint}`,
  );
  return new AppError(
    'CONFIG_INVALID',
    `Config file ${file} has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${lines.join('\n')}`,
    {
      value: problems,
      hint: 'fix each key listed above; nothing was changed on any remote',
    },
  );
}
