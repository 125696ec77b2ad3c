import type { LockResult } from './locker.js';

// What the daemon knows is not protected, for status and metrics: coverage gaps and pending units.
export class Coverage {
  // Per folder, the units its last reconcile and lock left unlocked (refused, or failed and waiting for a retry).
  readonly #gaps = new Map<string, Set<string>>();
  // Units whose entry a lock batch of this daemon left pending (no identity recorded), by path, with their remote id.
  readonly #pending = new Map<string, string>();

  // A reconcile's refusals replace what the folder's last look left.
  reconciled(folderPath: string, refused: readonly { path: string }[]): void {
    if (refused.length > 0) this.#gaps.set(folderPath, new Set(refused.map((r) => r.path)));
    else this.#gaps.delete(folderPath);
  }

  // Units of the folder left unlocked since its reconcile (refused after a flag read, failed to lock).
  add(folderPath: string, units: Iterable<string>): void {
    const gaps = this.#gaps.get(folderPath) ?? new Set();
    for (const unit of units) gaps.add(unit);
    if (gaps.size > 0) this.#gaps.set(folderPath, gaps);
  }

  // A lock batch's entries: left pending, or completed since.
  locked(results: readonly LockResult[]): void {
    for (const { request, indexed, leftPending } of results) {
      if (leftPending === true) this.#pending.set(request.unit, request.remote.id);
      else if (indexed) this.#pending.delete(request.unit);
    }
  }

  forget(folderPath: string): void {
    this.#gaps.delete(folderPath);
  }

  // Units the daemon knows are completed but not locked (refused, or failed and waiting for a retry).
  gaps(): number {
    let gaps = 0;
    for (const units of this.#gaps.values()) gaps += units.size;
    return gaps;
  }

  // Units of a remote whose entry this daemon left pending and has not completed since (lift will not unlock them).
  pendingUnits(remoteId: string): number {
    let count = 0;
    for (const remote of this.#pending.values()) if (remote === remoteId) count++;
    return count;
  }
}
