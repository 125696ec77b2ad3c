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

  // Removes the next folder, urgent ones first, passing over those `busy` names (a folder whose last round is still
  // locking keeps its place until that round is done); undefined when none is left to take.
  next(busy: (folderPath: string) => boolean): RoundItem | undefined {
    for (const [key, queued] of this.#dirty)
      if (!busy(key)) {
        this.#dirty.delete(key);
        return { ...queued, urgent: true };
      }
    for (const [key, folder] of this.#background)
      if (!busy(key)) {
        this.#background.delete(key);
        return { folder, full: true, urgent: false };
      }
    return undefined;
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
