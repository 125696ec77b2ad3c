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

// Long lines wrapped at spaces, never cut: a continuation is indented two more than the line. A word longer than the
// width (a path) stays whole on its own line.
export function wrapLine(line: string, width = 80): string[] {
  if (line.length <= width) return [line];
  const indent = ' '.repeat((/^ */.exec(line)?.[0].length ?? 0) + 2);
  const lines: string[] = [];
  let rest = line;
  let prefix = '';
  while (prefix.length + rest.length > width) {
    const room = width - prefix.length;
    let at = rest.lastIndexOf(' ', room);
    // No space inside the room (past the line's own indentation): break at the next space after it.
    if (at <= (prefix === '' ? indent.length - 2 : 0)) at = rest.indexOf(' ', room);
    if (at === -1) break;
    lines.push(prefix + rest.slice(0, at).trimEnd());
    rest = rest.slice(at + 1).trimStart();
    prefix = indent;
  }
  lines.push(prefix + rest);
  return lines;
}
