// The immutable attribute behind one interface, so protection logic is tested against a fake and runs against chattr.
export interface Target {
  path: string;
  // A directory locked or lifted with everything in it (a VHD directory, a config backup folder).
  recursive: boolean;
}

export type PathOutcome =
  | { path: string; status: 'ok' }
  | { path: string; status: 'vanished' }
  | { path: string; status: 'failed'; code: string; message: string };

export interface AttributesAdapter {
  setImmutable(targets: readonly Target[], immutable: boolean): Promise<PathOutcome[]>;
  // undefined: the path does not exist.
  isImmutable(paths: readonly string[]): Promise<Map<string, boolean | undefined>>;
}
