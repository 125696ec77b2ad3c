import { execFileSync } from 'node:child_process';
import { chmod } from 'node:fs/promises';
import type { TestRemote } from './remote.js';

// Someone holding XO's credentials: an unprivileged user owning the remote, as XO's NFS or SMB user does.
export const ATTACKER_ID = 65534;

// Gives the remote (everything written so far, none of it locked yet) to the attacker, and lets it reach the root.
export async function handRemoteToAttacker(remote: TestRemote): Promise<void> {
  await chmod(remote.base, 0o711);
  execFileSync('chown', ['-R', `${ATTACKER_ID}:${ATTACKER_ID}`, '--', remote.root]);
}

// Runs one command as the attacker: no capability, no supplementary group.
export function asAttacker(command: string, args: readonly string[]): void {
  execFileSync(
    'setpriv',
    [`--reuid=${ATTACKER_ID}`, `--regid=${ATTACKER_ID}`, '--clear-groups', '--', command, ...args],
    { stdio: 'pipe' },
  );
}

// Writes a file as the attacker (through sh, so the redirection runs as that user).
export function writeAsAttacker(file: string, content: string): void {
  asAttacker('sh', ['-c', 'printf %s "$1" > "$2"', 'sh', content, file]);
}
