// Where a command prints: stdout and stderr in the CLI, a list in tests and the man page generator.
export interface Io {
  out(line: string): void;
  err(line: string): void;
}

// What --json prints: one document, indented.
export function printJson(io: Io, value: unknown): void {
  io.out(JSON.stringify(value, null, 2));
}
