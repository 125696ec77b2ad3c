import type { FromSchema } from 'json-schema-to-ts';

// The one description of the config file: validation uses it and the TypeScript types are derived from it.
export const configSchema = {
  $id: 'https://xo-immutable-backups/config.schema.json',
  type: 'object',
  additionalProperties: false,
  required: ['remotes'],
  properties: {
    $schema: { type: 'string', description: 'Ignored: lets an editor find a JSON schema for the file.' },
    indexPath: {
      type: 'string',
      description:
        'Absolute folder holding the index of protected units, one sub-folder per remote id. ' +
        'Must not lie inside a remote.',
    },
    liftEvery: {
      type: 'string',
      description: 'How often the lift job runs, as a duration such as "1h".',
    },
    rescanEvery: {
      type: 'string',
      description:
        'How often every backup folder is reconciled even without a filesystem event, as a duration such as "15m".',
    },
    jsonSettleTime: {
      type: 'string',
      description:
        'How long a backup json that is not readable JSON (encrypted remotes) ' +
        'must stay unchanged before it counts as complete.',
    },
    metricsFile: {
      type: 'string',
      description:
        'Absolute path of a Prometheus node_exporter textfile (*.prom) the daemon rewrites every 10 s; unset: none.',
    },
    maxClockJump: {
      type: 'string',
      description:
        'How far the wall clock may move against the monotonic clock before lifting is frozen, ' +
        'as a duration such as "1d".',
    },
    protectChains: {
      type: 'boolean',
      description:
        "Keep every VHD a backup inside its window is built on locked until that backup leaves it (default true); false: each backup's own window only, so a delta may be locked while its base is deletable.",
    },
    windowStart: {
      type: 'string',
      enum: ['arrival', 'name'],
      description:
        'What each backup\'s window counts from (default "arrival"): "arrival", the later of its name\'s datetime and the moment the daemon first found it complete (mirrors, late transfers and backups written while the daemon was stopped get their whole window; one found complete within 1 % of the duration after its name\'s datetime counts from its name); "name", its name\'s datetime alone. Either way a window lasts immutabilityDuration + 1 %.',
    },
    logLevel: {
      type: 'string',
      description: 'The least severe log lines the daemon writes (JSON lines on stdout, to the journal).',
      enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace'],
    },
    remotes: {
      type: 'object',
      description: 'The remotes on this server to protect, at least one, each under an id of your choice.',
      minProperties: 1,
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['root', 'immutabilityDuration'],
        properties: {
          root: { type: 'string', description: 'Absolute path of the remote as mounted on this server.' },
          immutabilityDuration: {
            type: 'string',
            description: 'How long each backup stays immutable, at least "1d"; its window lasts this + 1 %.',
          },
          windowStart: {
            type: 'string',
            enum: ['arrival', 'name'],
            description:
              'What each backup\'s window counts from (default: the top-level windowStart): "arrival", the later of its name\'s datetime and the moment the daemon first found it complete (mirrors, late transfers and backups written while the daemon was stopped get their whole window; one found complete within 1 % of the duration after its name\'s datetime counts from its name); "name", its name\'s datetime alone. Either way a window lasts immutabilityDuration + 1 %.',
          },
          rebuildIndexOnStart: {
            type: 'boolean',
            description:
              'At each start, give every immutable unit of this remote without an index entry one, as rebuild-index ' +
              'does (after a lost index or a power loss).',
          },
          maxWatchedFolders: {
            type: 'number',
            description:
              'Most folders of this remote given an inotify watch (default 100000): beyond it new folders are ' +
              'locked by the periodic rescan only. A warning is logged at 80%.',
          },
          maxIndexEntries: {
            type: 'number',
            description:
              'Most index entries for this remote (default 1000000): beyond it new units are locked without an ' +
              'entry, so lift never unlocks them (rebuild-index recovers them). A warning is logged at 80%.',
          },
          protectChains: {
            type: 'boolean',
            description:
              "This remote's own protectChains (default: the top-level one). false on an encrypted remote whose key " +
              'the daemon does not have lets its chains be freed, at the price of each backup keeping its own window only.',
          },
          encryptionKeyFile: {
            type: 'string',
            description:
              'Absolute path of a file owned by root, mode 0600, holding the encryption key XO has for this ' +
              'encrypted remote: jsons, aliases and VHD headers are then read as on a plain remote (anyone root on ' +
              'this server can read the backups with it).',
          },
          delayBetweenSizeCheck: {
            anyOf: [{ type: 'string' }, { type: 'number' }],
            description:
              'Accepted from @xen-orchestra/immutable-backups and ignored: a backup is complete when its json is.',
          },
        },
      },
    },
  },
} as const;

export type RawConfig = FromSchema<typeof configSchema>;

export const defaults = {
  indexPath: '/var/lib/xo-immutable-backups',
  liftEvery: '1h',
  rescanEvery: '15m',
  jsonSettleTime: '5s',
  maxClockJump: '1d',
  protectChains: true,
  windowStart: 'arrival',
  logLevel: 'info',
  // Per remote. A large real remote has a few thousand VM and VDI folders and well under 100,000 units in its window:
  // ten times that is still far below the memory the watches and entries cost (docs/operations.md).
  maxWatchedFolders: 100_000,
  maxIndexEntries: 1_000_000,
} as const;

export const MIN_IMMUTABILITY_MS = 24 * 60 * 60 * 1000;

// What a backup's window counts from: the later of its name's datetime and its arrival, or its name's alone.
export type WindowStart = NonNullable<RawConfig['windowStart']>;

export type LogLevel = NonNullable<RawConfig['logLevel']>;

export interface RemoteConfig {
  id: string;
  root: string;
  immutabilityDurationMs: number;
  // Unset: "arrival", the default.
  windowStart?: WindowStart;
  rebuildIndexOnStart: boolean;
  // Caps against a flood of attacker-made folders and units (caps.ts); undefined: the defaults.
  maxWatchedFolders?: number;
  maxIndexEntries?: number;
  // The remote's protectChains, else the top-level one (validate resolves it); undefined: the top-level one.
  protectChains?: boolean;
  // XO's key for an encrypted remote, in a root-only file (remote/encryption.ts); undefined: read as ciphertext.
  encryptionKeyFile?: string;
}

// The validated config with durations in milliseconds and defaults applied: what the daemon runs on.
export interface Config {
  protectChains: boolean;
  // Keys accepted but ignored (a config migrated from the prior art): logged at start, shown by `check`.
  warnings?: string[];
  indexPath: string;
  liftEveryMs: number;
  rescanEveryMs: number;
  jsonSettleMs: number;
  maxClockJumpMs: number;
  metricsFile: string | undefined;
  logLevel: LogLevel;
  remotes: RemoteConfig[];
}
