import { closeSync, constants, mkdirSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { unlinkIfPresent, writeFileAtomic } from '../atomic.js';
import { errnoCode } from '../errors.js';
import { heldUntil, parseHold, VM_UUID, type Hold } from './rules.js';

// The holds of one remote, beside its index and as private: <indexPath>/.holds/<remote>/<vm>.json, 0700/0600. The
// index lies outside every remote and is root's alone, so the remote's users (XO's credentials) cannot plant one.
export class HoldStore {
  readonly folder: string;

  constructor(indexPath: string, remoteId: string) {
    this.folder = path.join(indexPath, '.holds', remoteId);
  }

  // The hold on `vm` whatever its end, or undefined; a damaged file holds nothing (when in doubt, protect).
  read(vm: string): Hold | undefined {
    if (!VM_UUID.test(vm)) return undefined;
    const file = this.#file(vm);
    // stat first: nearly every VM folder reconciled has no hold, and a miss is cheaper than a thrown ENOENT.
    if (statSync(file, { throwIfNoEntry: false }) === undefined) return undefined;
    try {
      return parseHold(readNoFollow(file), vm);
    } catch (error) {
      // Removed meanwhile, or a link where a hold should be: no hold.
      if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ELOOP') return undefined;
      throw error;
    }
  }

  // The end of the hold on `vm` when it is still on at `now`.
  heldUntil(vm: string, now: number): number | undefined {
    return heldUntil(this.read(vm), now);
  }

  list(): Hold[] {
    let names: string[];
    try {
      names = readdirSync(this.folder);
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return [];
      throw error;
    }
    const holds: Hold[] = [];
    for (const name of names) {
      const vm = name.endsWith('.json') ? name.slice(0, -'.json'.length) : '';
      const hold = this.read(vm);
      if (hold !== undefined) holds.push(hold);
    }
    return holds.sort((a, b) => a.until.localeCompare(b.until) || a.vm.localeCompare(b.vm));
  }

  async write(hold: Hold): Promise<void> {
    mkdirSync(path.dirname(this.folder), { recursive: true, mode: 0o700 });
    mkdirSync(this.folder, { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.#file(hold.vm), `${JSON.stringify(hold, null, 2)}\n`, 0o600);
  }

  // Ends the hold: true when there was one.
  remove(vm: string): boolean {
    const removed = unlinkIfPresent(this.#file(vm));
    unlinkIfPresent(this.#seenFile(vm));
    return removed;
  }

  // The daemon's acknowledgement: from now on nothing it locks belongs to this hold's VM.
  async markSeen(hold: Hold): Promise<void> {
    await writeFileAtomic(this.#seenFile(hold.vm), `${hold.id}\n`, 0o600);
  }

  seenId(vm: string): string | undefined {
    try {
      return readNoFollow(this.#seenFile(vm)).trim();
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return undefined;
      throw error;
    }
  }

  #file(vm: string): string {
    return path.join(this.folder, `${vm.toLowerCase()}.json`);
  }

  #seenFile(vm: string): string {
    return path.join(this.folder, `${vm.toLowerCase()}.seen`);
  }
}

// O_NOFOLLOW: a link planted where a hold is kept is refused, never read through.
function readNoFollow(file: string): string {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}
