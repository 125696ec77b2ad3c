import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { NotAFolder, unlessLinked, type HeldRemote } from '../remote/held.js';
import { resolveAliasTarget, type VdiFolder } from '../remote/model.js';
import { FOOTER_SIZE, HEADER_SIZE, headerOffset, vhdLink, type VhdLink } from '../remote/vhd-header.js';

// The VHD parent links and alias targets of a VM folder (backup/snapshot.ts), each read on first ask through the
// held folders and kept: a reconcile follows the chains of the backups it looks at, not every VHD of the folder.

export type AliasTarget =
  | { path: string; type: 'file' | 'directory' | 'other' | 'missing' }
  // The alias names a place outside its VDI folder (or anything but a *.vhd): its content, cut short.
  | { outside: string };

// A VHD directory's footer and header are 512 and 1024 bytes once decompressed; anything larger is not XO's.
const PART_LIMIT = 64 * 1024;
const ALIAS_LIMIT = 64 * 1024;

// For a listed VHD file or alias of a VDI folder only (paths relative to the VM folder `folder`); none on an encrypted
// remote, where they are ciphertext. Iterating gives what was read so far.
export function vhdLinks(
  remote: HeldRemote,
  folder: string,
  vdis: readonly VdiFolder[],
  encrypted: boolean,
): { aliases: ReadonlyMap<string, AliasTarget>; links: ReadonlyMap<string, VhdLink> } {
  const byPath = new Map(vdis.map((v) => [v.path, new Map(v.entries.map((e) => [e.name, e]))]));
  const isVhd = (relative: string): boolean => {
    const slash = relative.lastIndexOf('/');
    const name = relative.slice(slash + 1);
    const entry = byPath.get(relative.slice(0, slash))?.get(name);
    return !encrypted && entry?.isFile === true && name.endsWith('.vhd') && !name.startsWith('.');
  };
  const at = (relative: string): string => `${folder}/${relative}`;
  const aliases = new LazyMap((alias: string): AliasTarget | undefined =>
    isVhd(alias) && alias.endsWith('.alias.vhd') ? unlessLinked(() => aliasTarget(remote, folder, alias)) : undefined,
  );
  const links = new LazyMap((vhd: string): VhdLink | undefined => {
    if (!isVhd(vhd)) return undefined;
    if (!vhd.endsWith('.alias.vhd'))
      return unlessLinked(() => flatLink(remote, at(vhd))) ?? unknown('behind a symbolic link');
    const target = aliases.get(vhd);
    return target !== undefined && 'path' in target && target.type === 'directory'
      ? (unlessLinked(() => directoryLink(remote, at(target.path))) ?? unknown('behind a symbolic link'))
      : unknown('the alias cannot be read');
  });
  return { aliases, links };
}

class LazyMap<T> extends Map<string, T> {
  readonly #tried = new Set<string>();

  constructor(readonly read: (key: string) => T | undefined) {
    super();
  }

  override get(key: string): T | undefined {
    if (!this.#tried.has(key)) {
      this.#tried.add(key);
      const value = this.read(key);
      if (value !== undefined) this.set(key, value);
    }
    return super.get(key);
  }
}

function unknown(why: string): VhdLink {
  return { kind: 'unknown', why };
}

function aliasTarget(remote: HeldRemote, folder: string, alias: string): AliasTarget | undefined {
  const content = remote.readSmall(`${folder}/${alias}`, ALIAS_LIMIT)?.toString('utf8');
  if (content === undefined) return undefined;
  const target = resolveAliasTarget(alias, content);
  if (target === undefined) return { outside: JSON.stringify(content.trim().slice(0, 200)) };
  let stats;
  try {
    stats = remote.lstat(`${folder}/${target}`);
  } catch (error) {
    // A folder on the target's way swapped for a link (data/): claimed all the same, so that the reconcile's examine
    // meets the link and refuses it as a security warning, rather than the alias's directory going unclaimed.
    if (error instanceof NotAFolder && error.reason !== 'not a folder') return { path: target, type: 'other' };
    throw error;
  }
  const type = stats === undefined ? 'missing' : stats.isFile() ? 'file' : stats.isDirectory() ? 'directory' : 'other';
  return { path: target, type };
}

// The footer, then the header it places, through one open of the file.
function flatLink(remote: HeldRemote, file: string): VhdLink {
  const link = remote.readRanges(file, (read) => {
    const footer = read(0, FOOTER_SIZE);
    if (footer === undefined) return undefined;
    const offset = headerOffset(footer);
    return vhdLink(footer, offset === undefined ? undefined : read(offset, HEADER_SIZE));
  });
  return link ?? unknown('no VHD footer');
}

// vhd-lib compresses every part of a VHD directory with the filters chunk-filters.json names.
function directoryLink(remote: HeldRemote, directory: string): VhdLink {
  try {
    const filters: unknown = JSON.parse(
      remote.readSmall(`${directory}/chunk-filters.json`, PART_LIMIT)?.toString() ?? '[]',
    );
    const decode = (part: Buffer | undefined): Buffer | undefined => {
      if (part === undefined || !Array.isArray(filters) || filters.length === 0) return part;
      const options = { maxOutputLength: PART_LIMIT };
      if (filters.length === 1 && filters[0] === 'brotli') return brotliDecompressSync(part, options);
      if (filters.length === 1 && filters[0] === 'gzip') return gunzipSync(part, options);
      return undefined;
    };
    const footer = decode(remote.readSmall(`${directory}/footer`, PART_LIMIT));
    if (footer === undefined) return unknown('no VHD footer');
    return vhdLink(footer, decode(remote.readSmall(`${directory}/header`, PART_LIMIT)));
  } catch (error) {
    if (error instanceof NotAFolder) throw error;
    return unknown((error as Error).message);
  }
}
