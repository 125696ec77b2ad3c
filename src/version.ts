import { readFileSync } from 'node:fs';

// The version admins see in logs and in immutability.json comes from package.json, the one place it is set.
export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
