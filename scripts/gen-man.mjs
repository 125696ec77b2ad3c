// Writes the man pages into man/ from the built CLI (npm run build runs it after tsc): the command tree --help
// prints and the config schema, so the pages say what the code does. test/manual/man.test.ts checks the result.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';

const { renderManPages } = await import('../dist/manual/pages.js');
const root = new URL('../', import.meta.url);
mkdirSync(new URL('man/', root), { recursive: true });
for (const page of renderManPages(readFileSync(new URL('config.sample.json', root), 'utf8'))) {
  writeFileSync(new URL(`man/${page.file}`, root), page.text);
}
