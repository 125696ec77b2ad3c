import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { jsonErrorLocation, loadConfig } from '../../src/config/load.js';
import { AppError } from '../../src/errors.js';
import { tempFolder } from '../support/remote.js';

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
