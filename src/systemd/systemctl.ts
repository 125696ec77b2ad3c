import { existsSync } from 'node:fs';
import { execa } from 'execa';

// The one place that runs systemctl. systemd runs when /run/systemd/system exists (sd_booted(3)); in a container or
// a chroot it does not, and the unit files are read and written directly.
export function systemdRuns(): boolean {
  return existsSync('/run/systemd/system');
}

// The unit and its drop-ins as systemd loaded them, or undefined when it knows no such unit.
export async function systemctlCat(unit: string): Promise<string | undefined> {
  const result = await execa('systemctl', ['cat', '--no-pager', '--', unit], {
    reject: false,
    env: { LC_ALL: 'C', SYSTEMD_COLORS: '0' },
  });
  return result.exitCode === 0 ? result.stdout : undefined;
}

export async function daemonReload(): Promise<void> {
  await execa('systemctl', ['daemon-reload'], { env: { LC_ALL: 'C' } });
}

// systemctl is-active / is-enabled print one word ("active", "enabled", ...) and exit non-zero for the others.
export async function unitState(unit: string): Promise<{ active: string; enabled: string }> {
  const word = async (verb: string): Promise<string> =>
    (await execa('systemctl', [verb, '--', unit], { reject: false, env: { LC_ALL: 'C' } })).stdout.trim();
  return { active: await word('is-active'), enabled: await word('is-enabled') };
}
