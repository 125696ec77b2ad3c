import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fchmodSync,
  fchownSync,
  fstatSync,
  openSync,
  lstatSync,
  mkdirSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmdirSync,
  type Stats,
} from 'node:fs';
import path from 'node:path';
import { canChown } from '../attributes/capability.js';
import { errnoCode } from '../errors.js';
import { FOLDER_FLAGS, inFolder, NotAFolder, parentOf, type HeldRemote } from './held.js';
import { classifyFolder } from './patterns.js';

// A folder where XO writes, moved away by someone and replaced by a symbolic link: XO's handler follows the link (NFS
// resolves it on the client) and writes its backups behind it, where the daemon, which never follows a link on a
// remote, locks nothing. The link is moved aside, and in its place goes the folder it leads to (XO sees no change: it
// reached that very folder through the link), or, where that folder may not be moved, an empty folder: what XO writes
// next is then locked as any backup, and what it wrote behind the link stays there, for the admin to move back.
export type PutBack =
  | { result: 'put-back'; target: string; aside: string }
  | { result: 'replaced'; why: string; aside: string }
  | { result: 'left'; reason: string }
  | { result: 'no-link' };

// What the link leads to, as found on the remote's own filesystem.
export interface LinkTarget {
  // Relative to the root, as resolved by the server; undefined when it resolves outside the root.
  relative: string | undefined;
  // The link's text: an absolute one is resolved by each client on its own filesystem, not on the remote.
  text: string;
  stats: Pick<Stats, 'isDirectory' | 'uid' | 'dev' | 'ino'>;
}

// Whether the daemon may move the link's target into its place, or why not (pure). Only what whoever made the link
// could have moved there itself (a folder of the link's owner, on its filesystem), and nothing XO reads under its own
// name: never a folder of XO's layout, nor one inside a backup folder (but `within`, the VM folder holding the link),
// nor the root or a folder holding the link.
export function putBackRefusal(
  link: string,
  target: LinkTarget,
  linkStats: Pick<Stats, 'uid' | 'dev'>,
  within?: string,
): string | undefined {
  const to = target.relative;
  const absolute = absoluteLink(target.text);
  if (absolute !== undefined) return absolute;
  if (to === undefined) return 'it leads outside the remote';
  if (!target.stats.isDirectory()) return `it leads to ${to}, not a folder`;
  if (to === '' || `${link}/`.startsWith(`${to}/`)) return `it leads to ${to || 'the root'}, which holds the link`;
  if (target.stats.dev !== linkStats.dev) return `it leads to ${to}, on another filesystem`;
  if (target.stats.uid !== linkStats.uid)
    return `it leads to ${to}, owned by uid ${target.stats.uid}, not by the link's owner (${linkStats.uid})`;
  const segments = to.split('/');
  for (let n = 1; n <= segments.length; n++) {
    const above = segments.slice(0, n).join('/');
    const role = classifyFolder(above);
    if (n === segments.length && role !== undefined) return `it leads to ${to}, a folder of XO's own`;
    if (role?.role === 'leaf' && above !== within) return `it leads to ${to}, inside a backup folder of XO's own`;
  }
  // Inside the VM folder holding the link, only what XO cannot see (a dot name on the way) is moved: never its vdis/, a
  // job's or VDI's folder, data/ or a VHD directory.
  if (within !== undefined && to.startsWith(`${within}/`))
    if (
      !to
        .slice(within.length + 1)
        .split('/')
        .some((segment) => segment.startsWith('.'))
    )
      return `it leads to ${to}, a folder of XO's own`;
  return undefined;
}

export interface PutBackOptions {
  // The VM folder holding the link, when it is inside one (putBackRefusal).
  within?: string;
  // Where the link goes, and under which name (`.<name>.linked-<UTC>`): by default beside itself, under its own name.
  aside?: { folder: string; name: string };
  // An empty folder where the target may not be put back (by default); without it, the link is left where it was.
  emptyFolder?: boolean;
}

// Puts the folder a link leads to back in the link's place, or an empty folder, the link moved aside to a dot name XO
// never reads, for the admin to look at. Renames through held descriptors: nothing on the way is a link.
export function putBackLinkedFolder(
  held: HeldRemote,
  link: string,
  now: number,
  options: PutBackOptions = {},
): PutBack {
  let holder: number | undefined;
  let asideHolder: number | undefined;
  const asideFolder = options.aside?.folder ?? parentOf(link);
  try {
    holder = held.folder(parentOf(link));
    asideHolder = held.folder(asideFolder);
  } catch (error) {
    if (error instanceof NotAFolder) return { result: 'left', reason: `${error.path} above it is ${error.reason}` };
    throw error;
  }
  if (holder === undefined || asideHolder === undefined) return { result: 'no-link' };
  const place = inFolder(holder, path.posix.basename(link));
  const linkStats = lstatSync(place, { throwIfNoEntry: false });
  if (linkStats?.isSymbolicLink() !== true) return { result: 'no-link' };
  const target = linkTarget(held, place);
  const refusal = typeof target === 'string' ? target : putBackRefusal(link, target, linkStats, options.within);
  const from = refusal === undefined ? heldPlace(held, target as LinkTarget, linkStats.uid, holder) : undefined;
  // No empty folder (none asked for, or none could be given away): a link whose target may not come back stays, untouched.
  const noEmpty = options.emptyFolder === false ? '' : canChown() ? undefined : `; ${NOT_GIVEN}`;
  if (noEmpty !== undefined && (refusal ?? from?.reason) !== undefined)
    return { result: 'left', reason: `${refusal ?? from?.reason ?? 'it could not be looked at'}${noEmpty}` };
  const aside = asideName(asideHolder, options.aside?.name ?? path.posix.basename(link), now);
  const moved = moveAside(place, inFolder(asideHolder, aside), linkStats.ino);
  if (moved !== undefined) return { result: 'left', reason: moved };
  const asidePath = path.posix.join(asideFolder, aside);
  let why = refusal ?? from?.reason;
  if (why === undefined && from?.place !== undefined) {
    why = moveInPlace(from.place, place, target as LinkTarget);
    if (why === undefined)
      return { result: 'put-back', target: (target as LinkTarget).relative as string, aside: asidePath };
  }
  const asideAt = inFolder(asideHolder, aside);
  if (noEmpty !== undefined) return linkBack(asideAt, place, asidePath, why === undefined ? why : `${why}${noEmpty}`);
  return emptyFolderInPlace(holder, place, { at: asideAt, path: asidePath }, why ?? 'it could not be looked at');
}

// The link put back where it was, its target having failed to move: nothing changed but for the moment between.
function linkBack(aside: string, place: string, asidePath: string, why = 'it could not be looked at'): PutBack {
  try {
    renameSync(aside, place);
  } catch (error) {
    return { result: 'left', reason: `${why}; the link stays at ${asidePath} (${errnoCode(error) ?? String(error)})` };
  }
  return { result: 'left', reason: why };
}

// The target renamed into the link's place; what came instead of it (swapped in after it was checked) goes back.
function moveInPlace(from: string, place: string, target: LinkTarget): string | undefined {
  try {
    renameSync(from, place);
  } catch (error) {
    return `${target.relative} could not be moved (${errnoCode(error) ?? String(error)})`;
  }
  const moved = lstatSync(place, { throwIfNoEntry: false });
  if (moved?.ino === target.stats.ino && moved.dev === target.stats.dev) return undefined;
  try {
    renameSync(place, from);
  } catch {
    return `${target.relative} was replaced while it was moved, and what replaced it is now in the link's place`;
  }
  return `${target.relative} was replaced while it was moved`;
}

// The link renamed aside. A rename moves whatever holds the name by then: if it is no longer that link (a folder
// swapped back meanwhile), it is renamed back, and the link left for the next look.
function moveAside(place: string, aside: string, ino: number): string | undefined {
  try {
    renameSync(place, aside);
  } catch (error) {
    return `the link could not be moved aside (${errnoCode(error) ?? String(error)})`;
  }
  if (lstatSync(aside, { throwIfNoEntry: false })?.ino === ino) return undefined;
  if (lstatSync(place, { throwIfNoEntry: false }) === undefined)
    try {
      renameSync(aside, place);
      return 'it was replaced while it was looked at';
    } catch {
      // Taken again meanwhile: said below.
    }
  return `it was replaced while it was looked at, and what replaced it is now ${path.posix.basename(aside)}`;
}

// An empty folder where the link was, as XO would have made it (owner, group and mode of the folder holding it): XO
// writes its next backups there. XO may have made it first, in the instant the name was free: that is as good.
function emptyFolderInPlace(holder: number, place: string, aside: { at: string; path: string }, why: string): PutBack {
  const parent = fstatSync(holder);
  try {
    mkdirSync(place, 0o700);
  } catch (error) {
    if (errnoCode(error) === 'EEXIST' && lstatSync(place, { throwIfNoEntry: false })?.isDirectory() === true)
      return { result: 'replaced', why, aside: aside.path };
    return {
      result: 'left',
      reason: `${why}; no folder could be made in its place (${errnoCode(error) ?? String(error)})`,
    };
  }
  // Owner and mode set on the folder itself, opened without following a link: the name may be swapped meanwhile.
  let fd: number | undefined;
  try {
    fd = openSync(place, FOLDER_FLAGS);
    fchownSync(fd, parent.uid, parent.gid);
    fchmodSync(fd, parent.mode & 0o7777);
  } catch (error) {
    const code = errnoCode(error) ?? String(error);
    // Not given away (no CAP_CHOWN): a folder of root's, 0700, would stop XO writing there at all. Taken back, and the
    // link put back where it was, to be said at every look.
    if (code === 'EPERM' && fd !== undefined) return takeBack(place, aside, `${why}; ${NOT_GIVEN}`);
    return { result: 'left', reason: `${why}; the folder made in its place was swapped (${code})` };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  return { result: 'replaced', why, aside: aside.path };
}

const NOT_GIVEN =
  "no empty folder is made in its place: it could not be given to its folder's owner (the daemon lacks CAP_CHOWN; " +
  'keep it in CapabilityBoundingSet=, systemd/xo-immutable-backups.service), so the link stays';

function takeBack(place: string, aside: { at: string; path: string }, why: string): PutBack {
  try {
    rmdirSync(place);
  } catch (error) {
    return {
      result: 'left',
      reason: `${why}; the folder made could not be removed (${errnoCode(error) ?? String(error)})`,
    };
  }
  return linkBack(aside.at, place, aside.path, why);
}

// `.<name>.linked-<UTC>`, the name cut so that it stays a name (255 bytes), made unique when taken.
function asideName(holder: number, name: string, now: number): string {
  const suffix = `.linked-${new Date(now).toISOString().slice(0, 19).replace(/[-:]/g, '')}Z`;
  const kept = Buffer.from(name)
    .subarray(0, 200)
    .toString('utf8')
    .replace(/\uFFFD+$/, '');
  const aside = `.${kept}${suffix}`;
  let taken: boolean;
  try {
    taken = lstatSync(inFolder(holder, aside), { throwIfNoEntry: false }) !== undefined;
  } catch {
    taken = true;
  }
  return taken ? `${aside}-${randomBytes(4).toString('hex')}` : aside;
}

// The target reached from the root through held folders, no link on the way, still the inode the link led to, in a
// folder its maker can write: its own, the link's, or the root (where XO writes).
function heldPlace(
  held: HeldRemote,
  target: LinkTarget,
  owner: number,
  holder: number,
): { place: string; reason?: undefined } | { place?: undefined; reason: string } {
  const to = target.relative as string;
  try {
    const folder = held.folder(parentOf(to));
    const place = folder === undefined ? undefined : inFolder(folder, path.posix.basename(to));
    const found = place === undefined ? undefined : lstatSync(place, { throwIfNoEntry: false });
    if (
      folder === undefined ||
      place === undefined ||
      found?.ino !== target.stats.ino ||
      found.dev !== target.stats.dev
    )
      return { reason: `${to} changed while it was looked at` };
    const parent = fstatSync(folder);
    const holderStats = fstatSync(holder);
    const ownFolder = parent.uid === owner || parentOf(to) === '' || parent.ino === holderStats.ino;
    return ownFolder ? { place } : { reason: `${to} is in a folder of uid ${parent.uid}, not the link's owner's` };
  } catch (error) {
    if (error instanceof NotAFolder) return { reason: `${error.path} on the way to ${to} is ${error.reason}` };
    throw error;
  }
}

// Resolved by the server, as a client resolves a relative link inside the remote; a message when it resolves nowhere.
function linkTarget(held: HeldRemote, place: string): LinkTarget | string {
  let text: string;
  let real: string;
  let stats: Stats | undefined;
  try {
    text = readlinkSync(place);
    // Never resolved by the server: it could lead it anywhere (absoluteLink).
    const absolute = absoluteLink(text);
    if (absolute !== undefined) return absolute;
    real = realpathSync.native(place);
    stats = lstatSync(real, { throwIfNoEntry: false });
  } catch (error) {
    return `it leads nowhere (${errnoCode(error) ?? String(error)})`;
  }
  if (stats === undefined) return 'it leads nowhere';
  const relative = path.relative(held.realRoot, real);
  const inside = relative !== '..' && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative);
  return { relative: inside ? relative.split(path.sep).join('/') : undefined, text, stats };
}

// An absolute link is never moved back, nor resolved: each client resolves it on its own filesystem.
function absoluteLink(text: string): string | undefined {
  return path.posix.isAbsolute(text) ? `it is absolute (${text}): each client resolves it on its own` : undefined;
}
