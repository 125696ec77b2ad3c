import { readFileSync } from 'node:fs';
import { AppError } from '../errors.js';

// linux/capability.h: CAP_LINUX_IMMUTABLE is bit 9; without it chattr +i fails with EPERM even for root.
export const CAP_LINUX_IMMUTABLE = 9;

export function parseEffectiveCapabilities(procStatus: string): bigint | undefined {
  const match = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(procStatus);
  return match?.[1] === undefined ? undefined : BigInt(`0x${match[1]}`);
}

export function hasCapability(effective: bigint, bit: number): boolean {
  return (effective & (1n << BigInt(bit))) !== 0n;
}

// Refuses to go on without CAP_LINUX_IMMUTABLE: every lock would fail, one path at a time.
export function assertImmutableCapability(procStatus = readFileSync('/proc/self/status', 'utf8')): void {
  const effective = parseEffectiveCapabilities(procStatus);
  if (effective !== undefined && hasCapability(effective, CAP_LINUX_IMMUTABLE)) return;
  throw new AppError('MISSING_CAPABILITY', 'This process lacks CAP_LINUX_IMMUTABLE, so it cannot set or clear the immutable attribute', {
    value: effective === undefined ? 'unknown' : `CapEff=${effective.toString(16)}`,
    hint: 'run it as root; under systemd keep CAP_LINUX_IMMUTABLE in CapabilityBoundingSet and AmbientCapabilities (see systemd/xo-immutable-backups.service)',
  });
}
