// What the last look at each VM folder found that an admin should hear of, by folder: status counts them per remote.
export type FolderFact =
  // A VHD chain could not be read: its older VHDs are kept locked on the safe side.
  | 'chainUnknown'
  // Flat .vhd files: XO opens them read-write even to read, so it cannot restore them while locked.
  | 'flatVhds';

export class FolderFacts {
  readonly #folders = new Map<FolderFact, Set<string>>();

  // `found`: undefined when the look did not tell (the fact, if known, stands).
  note(folderPath: string, fact: FolderFact, found: boolean | undefined): void {
    if (found === undefined) return;
    const folders = this.#folders.get(fact) ?? new Set<string>();
    this.#folders.set(fact, folders);
    if (found) folders.add(folderPath);
    else folders.delete(folderPath);
  }

  forget(folderPath: string): void {
    for (const folders of this.#folders.values()) folders.delete(folderPath);
  }

  // How many folders under `root` have the fact.
  count(fact: FolderFact, root: string): number {
    let count = 0;
    for (const folder of this.#folders.get(fact) ?? []) if (folder.startsWith(`${root}/`)) count++;
    return count;
  }
}
