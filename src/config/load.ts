import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import Conf from 'conf';
import { AppError, errnoCode } from '../errors.js';
import type { Config } from './schema.js';
import { validateConfig, type ConfigProblem } from './validate.js';

export const DEFAULT_CONFIG_PATH = '/etc/xo-immutable-backups/config.json';

// conf gets no defaults and no schema, so it never writes the admin's file back.
export function loadConfig(file: string): Config {
  const absolute = path.resolve(file);
  try {
    if (!statSync(absolute).isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
    accessSync(absolute, constants.R_OK);
  } catch (error) {
    const missing = errnoCode(error) === 'ENOENT';
    throw new AppError(
      missing ? 'CONFIG_NOT_FOUND' : 'CONFIG_UNREADABLE',
      `Config file ${absolute} ${missing ? 'does not exist' : 'cannot be read'}`,
      {
        value: absolute,
        hint: missing
          ? `copy config.sample.json to ${DEFAULT_CONFIG_PATH} and edit it, or pass --config FILE`
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
    const where = jsonErrorLocation((error as Error).message, readFileSync(absolute, 'utf8'));
    throw new AppError('CONFIG_UNREADABLE', `Config file ${absolute} is not valid JSON${where}`, {
      value: absolute,
      hint: 'fix the JSON syntax (a missing comma or quote is the usual cause); config.sample.json shows the layout',
      cause: error,
    });
  }
  const result = validateConfig(raw);
  if (!result.ok) throw configInvalid(absolute, result.problems);
  return result.config;
}

// JSON.parse names a character position ("in JSON at position 62"), useless in an editor: " at line L, column C: what".
export function jsonErrorLocation(message: string, text: string): string {
  const position = /in JSON at position (\d+)/.exec(message);
  const offset = position
    ? Number(position[1])
    : /Unexpected end of JSON input/.test(message)
      ? text.length
      : undefined;
  const what = message.replace(/ in JSON at position \d+( \(line \d+ column \d+\))?$/, '');
  if (offset === undefined) return `: ${what}`;
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - (before.lastIndexOf('\n') + 1) + 1;
  return ` at line ${line}, column ${column}: ${what}`;
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
