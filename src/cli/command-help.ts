import { Option } from 'commander';
import { DEFAULT_CONFIG_PATH } from '../config/load.js';

// Where a command's action leaves its exit code for main() to return.
export type SetExit = (code: number) => void;

// The program's --help: what each code means across commands; each command's --help lists only its own.
export const EXIT_CODES_HELP = `
Exit codes (each command's --help lists its own):
  0  done (protect: stopped by SIGTERM or SIGINT)
  1  failed while running, or needs attention
  2  bad usage or config (nothing was changed)
  3  a start-up check failed: capability, remote root, self-test, index, immutable-flag helper (perl)`;

export const STARTUP_CHECK_FAILED =
  'a start-up check failed: capability, remote root, self-test, index, immutable-flag helper (perl)';

// The exit codes one command can return, with what 0, 1 and (when it runs start-up checks) 3 mean for it.
export function exitCodes(meaning: { ok: string; failure: string; usage?: string; startupCheck?: string }): string {
  return [
    '',
    'Exit codes:',
    `  0  ${meaning.ok}`,
    `  1  ${meaning.failure}`,
    `  2  ${meaning.usage ?? 'bad usage or config (nothing was changed)'}`,
    ...(meaning.startupCheck === undefined ? [] : [`  3  ${meaning.startupCheck}`]),
  ].join('\n');
}

export function configOption(): Option {
  return new Option('-c, --config <file>', 'config file').default(DEFAULT_CONFIG_PATH);
}
