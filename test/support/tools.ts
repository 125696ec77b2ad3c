import { execFileSync } from 'node:child_process';

// Whether a command is on PATH. Checks that need a tool CI installs are skipped without it, except in CI.
export function hasCommand(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// Tools .ci/run installs: missing there is a failure, not a skip.
export function requireInCi(name: string, debianPackage: string): boolean {
  const present = hasCommand(name);
  if (!present && process.env.CI !== undefined)
    throw new Error(`${name} is missing: .ci/run installs it (Debian package ${debianPackage})`);
  return present;
}
