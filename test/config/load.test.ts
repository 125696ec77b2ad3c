import { spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeJsonError, jsonErrorLocation, loadConfig } from '../../src/config/load.js';
import { AppError } from '../../src/errors.js';
import { tempFolder } from '../support/remote.js';

const BIN = path.resolve('bin/xo-immutable-backups.js');

function thrown(fn: () => unknown): AppError {
  try {
    fn();
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
  throw new Error('expected an AppError');
}

describe('loadConfig', () => {
  it("reads a config without rewriting the admin's file", async () => {
    const file = path.join(await tempFolder(), 'config.json');
    const text = '{ "remotes": { "main": { "root": "/srv/b", "immutabilityDuration": "7d" } } }\n';
    writeFileSync(file, text);
    const before = statSync(file);
    const config = loadConfig(file);
    expect(config.remotes[0]?.root).toBe('/srv/b');
    expect(readFileSync(file, 'utf8')).toBe(text);
    expect(statSync(file).mtimeMs).toBe(before.mtimeMs);
  });

  it('names a missing file and what to do, without creating its folder', async () => {
    const missing = path.join(await tempFolder(), 'etc', 'config.json');
    const error = thrown(() => loadConfig(missing));
    expect(error.code).toBe('CONFIG_NOT_FOUND');
    expect(error.message).toContain(missing);
    expect(error.hint).toContain('config.sample.json');
    expect(() => statSync(path.dirname(missing))).toThrow();
  });

  it('reports broken JSON as such', async () => {
    const file = path.join(await tempFolder(), 'config.json');
    writeFileSync(file, '{ "remotes": { ');
    expect(thrown(() => loadConfig(file)).code).toBe('CONFIG_UNREADABLE');
  });

  it('names the line and column of broken JSON, not a character position', async () => {
    const file = path.join(await tempFolder(), 'config.json');
    writeFileSync(
      file,
      '{\n  "indexPath": "/x",\n  "remotes": {\n    "a": { "root": "/r" "immutabilityDuration": "7d" }\n  }\n}\n',
    );
    const error = thrown(() => loadConfig(file));
    expect(error.message).toMatch(/is not valid JSON at line 4, column 25: \S/);
    expect(error.message).not.toContain('position');

    writeFileSync(file, '{\n  "remotes": {\n');
    expect(thrown(() => loadConfig(file)).message).toContain('is not valid JSON at line 3, column 1: ');
  });

  it('names a trailing comma as such, at the comma', async () => {
    const file = path.join(await tempFolder(), 'config.json');
    writeFileSync(file, '{\n  "remotes": {\n    "a": { "root": "/r", "immutabilityDuration": "7d" },\n  }\n}\n');
    const error = thrown(() => loadConfig(file));
    expect(error.code).toBe('CONFIG_UNREADABLE');
    expect(error.message).toContain('at line 3, column 56: a trailing comma');
    expect(error.hint).toBe('remove the comma at line 3, column 56');
  });

  it('gives the errno of an unreadable config and says to run as root', async () => {
    const file = path.join(await tempFolder(), 'config.json');
    writeFileSync(file, '{}');
    chmodSync(file, 0o600);
    const result = spawnSync(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, BIN, 'status', '--config', file],
      { encoding: 'utf8' },
    );
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('cannot be read (EACCES)');
    expect(result.stderr).toContain('run it as root');
  });

  it('lists every invalid key in one error', async () => {
    const file = path.join(await tempFolder(), 'config.json');
    writeFileSync(
      file,
      JSON.stringify({ liftEvery: 'x', remotes: { main: { root: 'rel', immutabilityDuration: '1h' } } }),
    );
    const error = thrown(() => loadConfig(file));
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toContain('liftEvery');
    expect(error.message).toContain('remotes.main.root');
    expect(error.message).toContain('remotes.main.immutabilityDuration');
  });
});

describe('describeJsonError', () => {
  it('names a trailing comma in an object or a list, and not a comma inside a string', () => {
    const list = '{\n  "a": [1,\n    2,\n  ]\n}';
    expect(describeJsonError("Unexpected token ']', ...", list).where).toBe(
      ' at line 3, column 6: a trailing comma after the last item (JSON allows none)',
    );
    const inString = '{ "a": ",}", "b" 2 }';
    expect(describeJsonError("Expected ':' after property name in JSON at position 16", inString).where).toBe(
      " at line 1, column 17: Expected ':' after property name",
    );
  });

  it('names the first error when it comes before a trailing comma', () => {
    const text = '{ "a" 1, "b": [2,] }';
    expect(describeJsonError("Expected ':' after property name in JSON at position 6", text).where).toContain(
      "column 7: Expected ':'",
    );
  });
});

describe('jsonErrorLocation', () => {
  it("turns V8's position into a line and a column, for both wordings", () => {
    const text = '{\n  "a": 1,\n  "b" 2\n}';
    expect(jsonErrorLocation("Expected ':' after property name in JSON at position 18", text)).toBe(
      " at line 3, column 7: Expected ':' after property name",
    );
    expect(jsonErrorLocation("Expected ':' after property name in JSON at position 18 (line 3 column 7)", text)).toBe(
      " at line 3, column 7: Expected ':' after property name",
    );
    expect(jsonErrorLocation('Unexpected end of JSON input', '{\n')).toBe(
      ' at line 2, column 1: Unexpected end of JSON input',
    );
    expect(jsonErrorLocation('something else', text)).toBe(': something else');
  });
});
