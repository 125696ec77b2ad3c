import { readFileSync } from 'node:fs';
import { AppError } from '../errors.js';

// linux/capability.h bit numbers of what the daemon needs:
// CAP_LINUX_IMMUTABLE to set or clear +i at all; CAP_FOWNER to do it on files root does not own (XO's files arrive
// under the NFS or SMB user); CAP_DAC_OVERRIDE to read and list backups whatever their modes.
export const REQUIRED_CAPABILITIES = [
  { name: 'CAP_LINUX_IMMUTABLE', bit: 9 },
  { name: 'CAP_FOWNER', bit: 3 },
  { name: 'CAP_DAC_OVERRIDE', bit: 1 },
] as const;

export function parseEffectiveCapabilities(procStatus: string): bigint | undefined {
  const match = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(procStatus);
  return match?.[1] === undefined ? undefined : BigInt(`0x${match[1]}`);
}

export function hasCapability(effective: bigint, bit: number): boolean {
  return (effective & (1n << BigInt(bit))) !== 0n;
}

// Refuses to go on without the capabilities: every lock would fail, one path at a time, in a log nobody reads.
export function assertCapabilities(procStatus = readFileSync('/proc/self/status', 'utf8')): void {
  const effective = parseEffectiveCapabilities(procStatus);
  const missing = REQUIRED_CAPABILITIES.filter((c) => effective === undefined || !hasCapability(effective, c.bit)).map(
    (c) => c.name,
  );
  if (missing.length === 0) return;
  throw new AppError(
    'MISSING_CAPABILITY',
    `This process lacks ${missing.join(', ')}, so it cannot ` +
      (missing.includes('CAP_LINUX_IMMUTABLE')
        ? 'set or clear the immutable attribute'
        : 'lock files it does not own or cannot read'),
    {
      value: effective === undefined ? 'unknown' : `CapEff=${effective.toString(16)}`,
      hint:
        `run it as root; under systemd keep ${missing.join(' ')} in CapabilityBoundingSet= ` +
        '(see systemd/xo-immutable-backups.service)',
    },
  );
}

// Whether this process may give a file away (CAP_CHOWN, bit 0), read once: its capabilities do not change while it
// runs. Without it, a folder root makes on the remote would stay root's.
let chown: boolean | undefined;
export function canChown(): boolean {
  chown ??= hasCapability(parseEffectiveCapabilities(readFileSync('/proc/self/status', 'utf8')) ?? 0n, 0);
  return chown;
}
