import { AppError } from '../errors.js';
import { exitCodeFor, EXIT } from './exit-codes.js';

// Errors for a human at a terminal or in journalctl: what failed, the code to search for, and what to do.
export function renderError(error: unknown, json: boolean): { text: string; exitCode: number } {
  if (error instanceof AppError) {
    const text = json
      ? JSON.stringify({ error: { code: error.code, message: error.message, value: error.value, hint: error.hint } })
      : `error [${error.code}]: ${error.message}\n  what to do: ${error.hint}`;
    return { text, exitCode: exitCodeFor(error.code) };
  }
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  return {
    text: json ? JSON.stringify({ error: { code: 'UNEXPECTED', message } }) : `error: ${message}`,
    exitCode: EXIT.failure,
  };
}
