#!/usr/bin/env node
// Thin launcher: the CLI lives in dist/, built by `npm install` (prepare) or `npm run build`.
const { launch } = await import('./launch.js');
await launch([]);
