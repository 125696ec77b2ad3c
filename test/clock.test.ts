import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { systemClock } from '../src/clock.js';

describe('system clock', () => {
  it("names this boot and reads a monotonic clock that another process of the boot shares (the guard's premise)", () => {
    expect(systemClock.bootId?.()).toBe(readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
    const before = systemClock.monotonic!();
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.hrtime.bigint()))'], {
      encoding: 'utf8',
    });
    const after = systemClock.monotonic!();
    const theirs = Number(BigInt(child.stdout)) / 1e6;
    // performance.now() in the child would read a few dozen ms here, far below `before`.
    expect(theirs).toBeGreaterThanOrEqual(before);
    expect(theirs).toBeLessThanOrEqual(after);
  });
});
