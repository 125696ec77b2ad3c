// Every failure an admin can see carries a stable code, the value that was wrong and what to do about it.
export type ErrorCode =
  | 'CONFIG_NOT_FOUND'
  | 'CONFIG_UNREADABLE'
  | 'CONFIG_INVALID'
  | 'MISSING_CAPABILITY'
  | 'REMOTE_NOT_FOUND'
  | 'REMOTE_NOT_DIRECTORY'
  | 'REMOTE_LINK_ON_PATH'
  | 'REMOTE_PATH_OUTSIDE'
  | 'SELF_TEST_FAILED'
  | 'INDEX_UNUSABLE'
  | 'INDEX_FORMAT_NEWER'
  | 'INDEX_FULL'
  | 'STATUS_FILE_FAILED'
  | 'PERL_MISSING'
  | 'FLAG_HELPER_FAILED'
  | 'CLOCK_FROZEN'
  | 'DAEMON_RUNNING'
  | 'INDEX_LOCKED'
  | 'INDEX_BUSY'
  | 'STAGE_TARGET_REFUSED'
  | 'STAGE_NOT_FOUND'
  | 'STAGE_SOURCE_REFUSED'
  | 'STAGE_COPY_FAILED'
  | 'KEY_FILE_REFUSED'
  | 'KEY_NOT_USABLE'
  | 'USAGE';

export class AppError extends Error {
  override readonly name = 'AppError';
  readonly code: ErrorCode;
  readonly value: unknown;
  readonly hint: string;

  constructor(code: ErrorCode, message: string, options: { value?: unknown; hint: string; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.value = options.value;
    this.hint = options.hint;
  }
}

// Node's system errors carry `code`; everything else does not.
export function errnoCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const { code } = error;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
