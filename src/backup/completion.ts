// On a remote XO does not encrypt, a json that never becomes valid JSON (XO crashed mid-write) is taken as complete
// (when in doubt, protect) only after this long; on encrypted remotes the configured jsonSettleTime applies.
// A json or metadata.json larger than this is not one XO wrote (a VM with XAPI's maximum of 255 disks makes one under
// 1 MiB): it is never read, so that parsing what an attacker wrote stays a fraction of a second (docs/security.md).
export const METADATA_LIMIT = 4 * 1024 * 1024;

export const PLAIN_REMOTE_SETTLE_MS = 10 * 60 * 1000;

export function settleTimeFor(encrypted: boolean, jsonSettleMs: number): number {
  return encrypted ? jsonSettleMs : PLAIN_REMOTE_SETTLE_MS;
}

export type Completion = { complete: true; completedAt: number } | { complete: false; recheckAt?: number };

// XO writes a backup's json last, so a whole json means a complete run: readable JSON once it parses, ciphertext
// (encrypted remotes) once unchanged for `settleMs`; the caller is told when to look again.
// `content` may be given already parsed (an object), so a large json is parsed once.
export function judgeCompletion(
  content: string | object | undefined,
  size: number,
  fileMtimeMs: number,
  now: number,
  settleMs: number,
): Completion {
  if (size === 0) return { complete: false };
  // A modification time in the future (clock skew, or set on purpose) counts from now, not from then.
  const mtimeMs = Math.min(fileMtimeMs, now);
  if (typeof content === 'object' || (content !== undefined && parsesAsObject(content)))
    return { complete: true, completedAt: mtimeMs };
  if (now - mtimeMs >= settleMs) return { complete: true, completedAt: mtimeMs + settleMs };
  return { complete: false, recheckAt: mtimeMs + settleMs };
}

export function parsesAsObject(content: string): boolean {
  return parseObject(content) !== undefined;
}

// The json's value when it is a JSON object or array; undefined when it does not parse (ciphertext, half written).
export function parseObject(content: string): object | undefined {
  try {
    const value: unknown = JSON.parse(content);
    return typeof value === 'object' && value !== null ? value : undefined;
  } catch {
    return undefined;
  }
}
