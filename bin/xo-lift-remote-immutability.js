#!/usr/bin/env node
// The prior art's command name: the same as `xo-immutable-backups lift`.
const { launch } = await import('./launch.js');
await launch(['lift']);
