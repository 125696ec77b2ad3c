import type { Identity } from '../remote/identity.js';

// Per VM folder, the backups whose every unit was seen locked, with the json's identity (any change voids the proof):
// event reconciles skip them so their cost follows what changed; a full proof ignores them.
export class ProvenBackups {
  readonly #folders = new Map<string, Map<string, string>>();
  #changed = false;

  static parse(text: string): ProvenBackups {
    const proven = new ProvenBackups();
    try {
      const value = JSON.parse(text) as { version?: unknown; folders?: unknown };
      if (value.version !== 1 || typeof value.folders !== 'object' || value.folders === null) return proven;
      for (const [folder, backups] of Object.entries(value.folders as Record<string, unknown>)) {
        if (typeof backups !== 'object' || backups === null) continue;
        const kept = new Map<string, string>();
        for (const [json, stamp] of Object.entries(backups as Record<string, unknown>))
          if (typeof stamp === 'string') kept.set(json, stamp);
        if (kept.size > 0) proven.#folders.set(folder, kept);
      }
    } catch {
      // An unreadable file proves nothing: every folder gets a full reconcile.
    }
    return proven;
  }

  isProven(folder: string, json: string, identity: Identity): boolean {
    return this.#folders.get(folder)?.get(json) === stampOf(identity);
  }

  prove(folder: string, json: string, identity: Identity): void {
    let backups = this.#folders.get(folder);
    if (backups === undefined) {
      backups = new Map<string, string>();
      this.#folders.set(folder, backups);
    }
    const stamp = stampOf(identity);
    if (backups.get(json) === stamp) return;
    backups.set(json, stamp);
    this.#changed = true;
  }

  // Something of the backup is not locked (a failed lock, a refusal, a missing unit): the next reconcile looks again.
  unprove(folder: string, json: string): void {
    const backups = this.#folders.get(folder);
    if (backups?.delete(json) !== true) return;
    this.#changed = true;
    if (backups.size === 0) this.#folders.delete(folder);
  }

  // Jsons gone from the folder (retention) or out of their window are dropped, so memory follows what is retained now.
  retainOnly(folder: string, jsons: readonly string[]): void {
    const backups = this.#folders.get(folder);
    if (backups === undefined) return;
    const keep = new Set(jsons);
    for (const json of backups.keys()) {
      if (keep.has(json)) continue;
      backups.delete(json);
      this.#changed = true;
    }
    if (backups.size === 0) this.#folders.delete(folder);
  }

  forgetFolder(folder: string): void {
    if (this.#folders.delete(folder)) this.#changed = true;
  }

  get size(): number {
    let size = 0;
    for (const backups of this.#folders.values()) size += backups.size;
    return size;
  }

  // True once after each change: whether the copy on disk is stale.
  takeChanged(): boolean {
    const changed = this.#changed;
    this.#changed = false;
    return changed;
  }

  // The copy on disk could not be written: it is still stale.
  markChanged(): void {
    this.#changed = true;
  }

  serialize(): string {
    const folders: Record<string, Record<string, string>> = {};
    for (const [folder, backups] of this.#folders) folders[folder] = Object.fromEntries(backups);
    return `${JSON.stringify({ version: 1, folders })}\n`;
  }
}

function stampOf(identity: Identity): string {
  return `${identity.dev}:${identity.ino}:${identity.ctimeNs}`;
}
