// What the last look at each leaf folder found that an admin should hear of, by folder: status counts them per remote.
export type FolderFact =
  // A VHD chain could not be read: its older VHDs are kept locked on the safe side.
  | 'chainUnknown'
  // Flat .vhd files: XO opens them read-write even to read, so it cannot restore them while locked.
  | 'flatVhds'
  // Backups past their window and left unlocked (a number per folder): said at a remote's first start.
  | 'pastWindow'
  // Symbolic links where XO writes a json or a folder (a number per VM folder): planted, never followed nor locked.
  | 'plantedLinks';

export class FolderFacts {
  readonly #folders = new Map<FolderFact, Map<string, number>>();

  // `found`: undefined when the look did not tell (the fact, if known, stands); a number counts backups.
  note(folderPath: string, fact: FolderFact, found: boolean | number | undefined): void {
    if (found === undefined) return;
    const folders = this.#folders.get(fact) ?? new Map<string, number>();
    this.#folders.set(fact, folders);
    const count = Number(found);
    if (count > 0) folders.set(folderPath, count);
    else folders.delete(folderPath);
  }

  forget(folderPath: string): void {
    for (const folders of this.#folders.values()) folders.delete(folderPath);
  }

  // How many folders under `root` have the fact, or with `sum`, how many backups in all.
  count(fact: FolderFact, root: string, sum = false): number {
    let count = 0;
    for (const [folder, n] of this.#folders.get(fact) ?? []) if (folder.startsWith(`${root}/`)) count += sum ? n : 1;
    return count;
  }
}
