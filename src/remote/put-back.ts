import { randomBytes } from 'node:crypto';
import { lstatSync, readlinkSync, realpathSync, renameSync, type Stats } from 'node:fs';
import path from 'node:path';
import { errnoCode } from '../errors.js';
import { inFolder, NotAFolder, parentOf, type HeldRemote } from './held.js';
import { classifyFolder } from './patterns.js';

// A folder where XO writes, moved away by someone and replaced by a symbolic link to it: XO's handler follows the
// link (NFS resolves it on the client) and writes its backups behind it, where the daemon, which never follows a link
// on a remote, locks nothing. Putting the folder back in the link's place changes nothing XO sees (it reached that
// very folder through the link) and brings what it wrote there back under protection.
export type PutBack =
  { result: 'put-back'; target: string; aside: string } | { result: 'left'; reason: string } | { result: 'no-link' };

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
// name: never a folder of XO's layout (another VM's folder: XO then writes into it, where it is locked), nor one
// inside a backup folder, nor the root or a folder holding the link.
export function putBackRefusal(
  link: string,
  target: LinkTarget,
  linkStats: Pick<Stats, 'uid' | 'dev'>,
): string | undefined {
  const to = target.relative;
  if (path.posix.isAbsolute(target.text)) return `it is absolute (${target.text}): each client resolves it on its own`;
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
    if (role?.role === 'leaf' || (n === segments.length && role !== undefined))
      return `it leads to ${to}, ${n === segments.length ? 'a folder' : 'inside a backup folder'} of XO's own`;
  }
  return undefined;
}

// Puts the folder a link leads to back in the link's place, the link itself moved aside to a dot name XO never reads,
// for the admin to look at. Two renames through held descriptors (Node has no RENAME_EXCHANGE): if XO makes a folder
// of that name in between, the second fails and the link is put back as it was, to be tried again at the next look.
export function putBackLinkedFolder(held: HeldRemote, link: string, now: number): PutBack {
  let holder: number | undefined;
  try {
    holder = held.folder(parentOf(link));
  } catch (error) {
    if (error instanceof NotAFolder) return { result: 'left', reason: `${error.path} above it is ${error.reason}` };
    throw error;
  }
  if (holder === undefined) return { result: 'no-link' };
  const place = inFolder(holder, path.posix.basename(link));
  const linkStats = lstatSync(place, { throwIfNoEntry: false });
  if (linkStats?.isSymbolicLink() !== true) return { result: 'no-link' };
  const target = linkTarget(held, place);
  if (typeof target === 'string') return { result: 'left', reason: target };
  const refusal = putBackRefusal(link, target, linkStats);
  if (refusal !== undefined) return { result: 'left', reason: refusal };
  const to = target.relative as string;
  const from = heldPlace(held, to, target.stats);
  if (from.reason !== undefined) return { result: 'left', reason: from.reason };
  let aside = `.${path.posix.basename(link)}.linked-${stampOf(now)}`;
  if (lstatSync(inFolder(holder, aside), { throwIfNoEntry: false }) !== undefined)
    aside = `${aside}-${randomBytes(4).toString('hex')}`;
  const asidePlace = inFolder(holder, aside);
  try {
    renameSync(place, asidePlace);
  } catch (error) {
    return { result: 'left', reason: `the link could not be moved aside (${errnoCode(error) ?? String(error)})` };
  }
  try {
    renameSync(from.place, place);
  } catch (error) {
    const code = errnoCode(error) ?? String(error);
    try {
      renameSync(asidePlace, place);
    } catch {
      return { result: 'left', reason: `${to} could not be moved (${code}); the link is now ${aside}` };
    }
    return { result: 'left', reason: `${to} could not be moved (${code})` };
  }
  return { result: 'put-back', target: to, aside: path.posix.join(parentOf(link), aside) };
}

// The target reached from the root through held folders, no link on the way, and still the inode the link led to.
function heldPlace(
  held: HeldRemote,
  to: string,
  stats: Pick<Stats, 'ino' | 'dev'>,
): { place: string; reason?: undefined } | { reason: string } {
  try {
    const folder = held.folder(parentOf(to));
    const place = folder === undefined ? undefined : inFolder(folder, path.posix.basename(to));
    const found = place === undefined ? undefined : lstatSync(place, { throwIfNoEntry: false });
    if (place === undefined || found?.ino !== stats.ino || found.dev !== stats.dev)
      return { reason: `${to} changed while it was looked at` };
    return { place };
  } catch (error) {
    if (error instanceof NotAFolder) return { reason: `${error.path} on the way to ${to} is ${error.reason}` };
    throw error;
  }
}

// Resolved by the server, as a client resolves a relative link inside the remote; a message when it resolves nowhere.
function linkTarget(held: HeldRemote, place: string): LinkTarget | string {
  let text: string;
  let real: string;
  try {
    text = readlinkSync(place);
    real = realpathSync.native(place);
  } catch (error) {
    return `it leads nowhere (${errnoCode(error) ?? String(error)})`;
  }
  const stats = lstatSync(real, { throwIfNoEntry: false });
  if (stats === undefined) return 'it leads nowhere';
  const relative = path.relative(held.realRoot, real);
  const inside = relative !== '..' && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative);
  return { relative: inside ? relative.split(path.sep).join('/') : undefined, text, stats };
}

function stampOf(now: number): string {
  return `${new Date(now).toISOString().slice(0, 19).replace(/[-:]/g, '')}Z`;
}
