import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readEntryText } from '../../src/index/entry-file.js';
import { tempFolder } from '../support/remote.js';

describe('readEntryText', () => {
  it('reads an entry longer than its one-read buffer whole, from its first byte', async () => {
    // An entry is about 600 bytes; one of another tool, or padded by hand, can be longer than the 4 KiB read at once.
    const file = path.join(await tempFolder(), 'entry');
    const text = `{"path":"${'x'.repeat(5000)}"}\n`;
    await writeFile(file, text);
    expect(readEntryText(file)).toBe(text);
  });

  it('says a missing entry is gone', async () => {
    expect(readEntryText(path.join(await tempFolder(), 'none'))).toBeUndefined();
  });
});
