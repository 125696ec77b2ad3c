// What a directory unit may hold, and nothing else: XO's VHD directory (header, footer, bat, chunk-filters.json,
// blocks/<n>/<m>), or a config or pool metadata date folder (metadata.json and its data file).
export type DirectoryLayout = 'vhd-directory' | 'date-folder';

// What the flag helper acted on, read with statx on its descriptor after the change: the fields of remote/identity.ts
// (its Identity), computed as Node's lstat computes them, so both compare equal. Declared here: attributes sits below
// remote.
export interface AttributesIdentity {
  dev: string;
  ino: string;
  size: string;
  mtimeNs: string;
  ctimeNs: string;
  birthtimeNs: string;
}

// The immutable attribute behind one interface, so protection logic is tested against a fake and runs for real.
export interface Target {
  path: string;
  // A directory locked or lifted with what it holds: its layout's entries; anything else refuses a clear (EFOREIGN),
  // and a lock locks it all the same and says so (the outcome's warning).
  // Without a layout, everything in it, whatever it is: decommissioning only (a lock of one is refused).
  recursive: boolean;
  layout?: DirectoryLayout;
  // Unlocking a file unit (not recursive) with a layout: a directory found there is unlocked as one of that layout
  // (lift: an entry of an older release may say file for a directory unit).
  orDirectory?: boolean;
  // Act only if the path is still this file: its inode, and its birth time when known and not "0", as recorded when it
  // was locked (lift: the helper's refusal, ECHANGED, is the check that it is the unit locked).
  ino?: string;
  birthtimeNs?: string;
  // A VM backup's json (not recursive), unlocked only when no flat `<dt>.vhd` of its VM folder is immutable: the helper
  // looks just before it clears, and refuses with EHELD (lift/flat-order.ts).
  afterFlatVhds?: boolean;
}

// The folder paths are walked from: `root` is opened as given (links above it are the admin's) and must still be
// `realRoot`, as resolved at start; below it no link is followed. A remote's RemoteRoot is one.
export interface Within {
  root: string;
  realRoot: string;
}

export type PathOutcome =
  // identity: what was locked, read on the helper's descriptor after the change (a set's only: a clear has none).
  // warning: locked all the same, with what XO never writes in it or a second name (EFOREIGN, ELINKS): lift refuses
  // to clear it while that is there.
  | { path: string; status: 'ok'; identity?: AttributesIdentity; warning?: { code: string; message: string } }
  | { path: string; status: 'vanished' }
  | { path: string; status: 'failed'; code: string; message: string };

export interface AttributesAdapter {
  // Every path must be `within.root` or below it (or below `within.realRoot`); any other fails with ECONFINE.
  setImmutable(within: Within, targets: readonly Target[], immutable: boolean): Promise<PathOutcome[]>;
  // What setImmutable(..., false) would answer, nothing changed (lift --dry-run, verify): its refusals, ok elsewhere.
  checkClear(within: Within, targets: readonly Target[]): Promise<PathOutcome[]>;
  // undefined: the path does not exist, or is not a regular file or directory reached without a link.
  isImmutable(within: Within, paths: readonly string[]): Promise<Map<string, boolean | undefined>>;
}
