import type { ErrorCode } from '../errors.js';

// Documented in the README; scripts and systemd rely on them.
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  startupCheck: 3,
} as const;

export function exitCodeFor(code: ErrorCode): number {
  switch (code) {
    case 'USAGE':
    case 'CONFIG_NOT_FOUND':
    case 'CONFIG_UNREADABLE':
    case 'CONFIG_INVALID':
    case 'STAGE_TARGET_REFUSED':
      return EXIT.usage;
    case 'MISSING_CAPABILITY':
    case 'REMOTE_NOT_FOUND':
    case 'REMOTE_NOT_DIRECTORY':
    case 'SELF_TEST_FAILED':
    case 'INDEX_UNUSABLE':
    case 'INDEX_FORMAT_NEWER':
    case 'INDEX_LOCKED':
    case 'STATUS_FILE_FAILED':
    case 'PERL_MISSING':
      return EXIT.startupCheck;
    default:
      return EXIT.failure;
  }
}
