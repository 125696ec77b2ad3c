import type { LeafFolder } from './context.js';

// An event (or the start-up catch-up) asks for a look at what changed, before anything else; a periodic scan asks for a
// full proof of every backup, in the background, so it never delays a new backup.
export type Urgency = 'event' | 'scan';

export interface RoundItem {
  folder: LeafFolder;
  full: boolean;
  urgent: boolean;
}

// Folders waiting for a reconcile: urgent ones first, then background full proofs; repeated hints coalesce.
export class FolderQueue {
  readonly #dirty = new Map<string, { folder: LeafFolder; full: boolean }>();
  readonly #background = new Map<string, LeafFolder>();

  get size(): number {
    return this.#dirty.size + this.#background.size;
  }

  add(folder: LeafFolder, urgency: Urgency): void {
    const queued = this.#dirty.get(folder.path);
    if (urgency === 'scan' && queued === undefined) this.#background.set(folder.path, folder);
    else if (urgency === 'scan') queued!.full = true;
    else
      this.#dirty.set(folder.path, { folder, full: (queued?.full ?? false) || this.#background.delete(folder.path) });
  }

  // Folders taken for a round but not reached: back at the head of their queue, in their order (they were next: the
  // catch-up's folders changed last stay ahead of the rest), unless something queued them again meanwhile.
  requeue(items: readonly RoundItem[]): void {
    const dirty = new Map<string, { folder: LeafFolder; full: boolean }>();
    const background = new Map<string, LeafFolder>();
    for (const { folder, full, urgent } of items) {
      const queued = this.#dirty.get(folder.path);
      if (queued !== undefined) queued.full ||= full;
      else if (urgent) dirty.set(folder.path, { folder, full: full || this.#background.delete(folder.path) });
      else background.set(folder.path, folder);
    }
    prepend(this.#dirty, dirty);
    prepend(this.#background, background);
  }

  // Removes up to `max` folders, urgent ones first.
  take(max: number): RoundItem[] {
    const round: RoundItem[] = [];
    for (const queued of this.#dirty.values()) {
      if (round.length === max) break;
      round.push({ ...queued, urgent: true });
    }
    for (const folder of this.#background.values()) {
      if (round.length === max) break;
      round.push({ folder, full: true, urgent: false });
    }
    for (const { folder } of round) this.delete(folder.path);
    return round;
  }

  delete(folderPath: string): void {
    this.#dirty.delete(folderPath);
    this.#background.delete(folderPath);
  }

  clear(): void {
    this.#dirty.clear();
    this.#background.clear();
  }
}

function prepend<V>(queue: Map<string, V>, first: ReadonlyMap<string, V>): void {
  if (first.size === 0) return;
  const rest = [...queue];
  queue.clear();
  for (const [key, value] of [...first, ...rest]) queue.set(key, value);
}
