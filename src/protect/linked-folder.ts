import { lstatSync } from 'node:fs';
import path from 'node:path';
import type { RemoteContext } from '../context/remote-context.js';
import { errnoCode } from '../errors.js';
import { NotAFolder, withHeldRemote, type HeldRemote } from '../remote/held.js';
import { putBackLinkedFolder, type PutBack, type PutBackOptions } from '../remote/put-back.js';
import type { LeafFolder, Refusal } from './context.js';
import type { FolderReport, ReconcileOptions } from './folder-report.js';

// A symbolic link where XO writes a folder (a VM folder, xo-vm-backups, a schedule's folder, or a folder XO makes in a
// VM folder): XO's handler follows it and writes its backups behind it, where the daemon, which never follows a link on
// a remote, locks nothing. The link is moved aside, and the folder it leads to put back in its place, or an empty one
// made (remote/put-back.ts), said once; the caller then looks at the folder as at any other. Only when even that
// fails is the link left, and said at every look, as a security warning and a coverage gap.
export type LinkedFolder = { settled: true; warning: Refusal } | { settled: false; refusal: Refusal | undefined };

export async function lookAtLinkedFolder(folder: LeafFolder, options: ReconcileOptions): Promise<LinkedFolder> {
  if (!isLinked(folder.path)) return { settled: false, refusal: undefined };
  if (options.settle === false)
    return { settled: false, refusal: { path: folder.path, reason: leftReason(ONLY_READS), security: true } };
  return settle(folder.remote, relativeTo(folder.remote, folder.path), options.now);
}

// verify's own look: the daemon settles the link, verify changes nothing on the remote.
const ONLY_READS = 'verify only reads (the daemon settles it)';

// A folder's look (`first`, or `look`), and for a VM folder the links it met inside settled, and looked at again while
// some were: nested links (vdis/, a job's, a VDI's folder, data/, a VHD directory, each a link) are one level a look.
// Never with settle: false.
export async function settleInsideAndLook(
  folder: LeafFolder,
  options: ReconcileOptions,
  look: () => Promise<FolderReport>,
  first?: FolderReport,
): Promise<FolderReport> {
  let current = first ?? (await look());
  if (options.settle === false || folder.kind !== 'vm' || current.refusals.length === 0) return current;
  // What every look said: a look's own settles (a VHD directory's blocks/) are not met again by the next one.
  const said: Refusal[] = [];
  // Five levels where XO makes a folder in a VM folder, and a look after the last.
  for (let level = 0; level < 6; level++) {
    const inside = await settleLinksInside(folder, current.refusals, options.now);
    if (inside.settled.length === 0) {
      current = { ...current, refusals: inside.refusals };
      break;
    }
    said.push(...(current.warnings ?? []), ...inside.settled);
    current = await look();
  }
  if (said.length === 0) return current;
  const warnings = [...said, ...(current.warnings ?? [])];
  // A warning each look makes again (a json naming too much) is said once.
  const once = warnings.filter((w, i) => warnings.findIndex((o) => o.path === w.path && o.reason === w.reason) === i);
  return { ...current, warnings: once };
}

// The links a VM folder's look met where XO makes a folder inside it (vdis/, a job's or a VDI's folder, data/, a VHD
// directory), each settled as above: the warnings of those settled (the folder is then looked at again), and the look's
// refusals, each link left said with why.
async function settleLinksInside(
  folder: LeafFolder,
  refusals: readonly Refusal[],
  now: number,
): Promise<{ settled: Refusal[]; refusals: Refusal[] }> {
  const settled: Refusal[] = [];
  const within = relativeTo(folder.remote, folder.path);
  const said = new Map<Refusal, Refusal>();
  for (const refusal of refusals) {
    const inside = refusal.path.startsWith(`${folder.path}/`) ? refusal.path.slice(folder.path.length + 1) : '';
    if (!VDI_TREE.test(inside) || !isLinked(refusal.path)) continue;
    const link = relativeTo(folder.remote, refusal.path);
    // A VHD directory (written by then, or being written): its folder put back, never an empty one in its place.
    const options = VHD_DIRECTORY.test(inside)
      ? { within, aside: asideInVdiFolder(link), emptyFolder: false }
      : { within };
    const done = await settle(folder.remote, link, now, options);
    if (done.settled) settled.push(done.warning);
    else if (done.refusal !== undefined) said.set(refusal, done.refusal);
  }
  return { settled, refusals: refusals.map((r) => said.get(r) ?? r) };
}

// Where XO makes a folder in a VM folder: vdis/, a job's folder, a VDI folder (never a dot name), a VDI folder's data/
// and the VHD directories in it (their blocks/ and blocks/<n>: before their lock, settleLinksInVhdDirectory).
const VDI_TREE = /^vdis(?:(?:\/[^./][^/]*){0,2}|\/[^./][^/]*\/[^./][^/]*\/data(?:\/[^./][^/]*\.vhd)?)$/;
const VHD_DIRECTORY = /^vdis\/[^/]+\/[^/]+\/data\/[^/]+$/;

async function settle(
  remote: RemoteContext,
  link: string,
  now: number,
  options: PutBackOptions = {},
): Promise<LinkedFolder> {
  const at = path.join(remote.root, link);
  let done: PutBack;
  try {
    done = await withHeldRemote(remote, async (held) => putBackLinkedFolder(held, link, now, options));
  } catch (error) {
    // Whatever went wrong is said, and what the look found stands: the next look tries again.
    const reason = `it could not be settled (${errnoCode(error) ?? String(error)})`;
    return { settled: false, refusal: { path: at, reason: leftReason(reason), security: true } };
  }
  if (done.result === 'no-link') return { settled: false, refusal: undefined };
  if (done.result === 'left')
    return { settled: false, refusal: { path: at, reason: leftReason(done.reason), security: true } };
  return { settled: true, warning: { path: at, reason: settledReason(done), security: true } };
}

// A VHD directory about to be locked (`inVm`, relative to the VM folder `vm`): XO makes its blocks/ and blocks/<n> with
// mkdir -p, which follows a link there, and writes the blocks behind it, which its lock would leave out. Each such
// link is moved aside into the VDI folder (XO's clean-up removes what no disk claims in data/; the lift refuses what is
// inside a unit), and the folder it led to put back, when its maker could have moved it there (remote/put-back.ts);
// never an empty folder: the backup is written by then, and one would only lose its blocks. Again once a folder came
// back (blocks/ put back may hold links in its turn). The warnings, for the look's report; a link left is said by the
// lock too (locked without it).
export function settleLinksInVhdDirectory(held: HeldRemote, vm: string, inVm: string, now: number): Refusal[] {
  const within = `xo-vm-backups/${vm}`;
  const unit = `${within}/${inVm}`;
  const settled: Settled[] = [];
  const tried = new Set<string>();
  for (let round = 0; round < 2; round++) {
    const links = blockLinks(held, unit).filter((link) => !tried.has(link));
    for (const link of links.slice(0, MAX_BLOCK_LINKS - tried.size)) {
      tried.add(link);
      settled.push(settleBlocks(held, link, within, now));
    }
    if (!settled.some((s) => s.putBack)) break;
  }
  return saidOnce(held, unit, settled);
}

// A directory XO writes has a thousand blocks/<n> folders at most (2 TiB): past that many links, the rest is left.
const MAX_BLOCK_LINKS = 2048;

interface Settled {
  putBack: boolean;
  warning: Refusal | undefined;
}

// One line for one link; for many (a flood planted with XO's credentials), one line each way, with the count.
function saidOnce(held: HeldRemote, unit: string, settled: readonly Settled[]): Refusal[] {
  return [true, false].flatMap((putBack) => {
    const these = settled.filter((s) => s.putBack === putBack && s.warning !== undefined).map((s) => s.warning!);
    if (these.length <= 1) return these;
    const [first] = these as [Refusal];
    const what = putBack ? 'settled' : 'left in place';
    const count = !putBack && settled.length >= MAX_BLOCK_LINKS ? `at least ${these.length}` : `${these.length}`;
    const reason = `${count} symbolic links in this VHD directory, where XO writes its blocks, ${what}; the first, ${first.path}: ${first.reason}`;
    return [{ path: path.join(held.root, unit), reason, security: true }];
  });
}

// blocks/ itself when it is a link; else the links among its entries where XO makes a folder (<n>).
function blockLinks(held: HeldRemote, unit: string): string[] {
  try {
    const blocks = held.list(unit).find((e) => e.name === 'blocks');
    if (blocks?.isSymlink === true) return [`${unit}/blocks`];
    if (blocks?.isDirectory !== true) return [];
    return held
      .list(`${unit}/blocks`)
      .filter((entry) => entry.isSymlink && /^[0-9]+$/.test(entry.name))
      .map((entry) => `${unit}/blocks/${entry.name}`);
  } catch (error) {
    // Gone or swapped since it was examined: the lock says what it finds.
    if (error instanceof NotAFolder) return [];
    throw error;
  }
}

function settleBlocks(held: HeldRemote, link: string, within: string, now: number): Settled {
  const at = path.join(held.root, link);
  let done: PutBack;
  try {
    done = putBackLinkedFolder(held, link, now, { within, aside: asideInVdiFolder(link), emptyFolder: false });
  } catch (error) {
    done = { result: 'left', reason: `it could not be settled (${errnoCode(error) ?? String(error)})` };
  }
  if (done.result === 'put-back')
    return { putBack: true, warning: { path: at, reason: settledReason(done), security: true } };
  if (done.result !== 'left') return { putBack: false, warning: undefined };
  const reason = `${BLOCKS_LINK}, left in place: ${done.reason}; ${BLOCKS_LEFT}`;
  return { putBack: false, warning: { path: at, reason, security: true } };
}

// Below a VDI folder (data/<dir>, data/<dir>/blocks/<n>): aside in the VDI folder, named by the path from it.
function asideInVdiFolder(link: string): { folder: string; name: string } | undefined {
  const match = /^(xo-vm-backups\/[^/]+\/vdis\/[^/]+\/[^/]+)\/(.+\/.+)$/.exec(link);
  return match === null ? undefined : { folder: match[1]!, name: match[2]!.replaceAll('/', '-') };
}

const BLOCKS_LINK = 'a symbolic link in a VHD directory, where XO writes its blocks';
const BLOCKS_LEFT =
  'the directory is locked without what is behind the link, which XO reads through it: move that folder back in ' +
  "the link's place by hand, then find out who can write to the remote";

function settledReason(done: Extract<PutBack, { result: 'put-back' | 'replaced' }>): string {
  const link = `a symbolic link where XO writes a folder, moved aside to ${done.aside}`;
  if (done.result === 'put-back')
    return `${link}: the folder it led to, ${done.target}, was put back in its place (what XO wrote behind the link is locked now); find out who can write to the remote`;
  return (
    `${link}: the folder it led to was not moved (${done.why}), an empty folder was made in its place, so that what ` +
    'XO writes next is locked; what XO wrote behind the link stays there, where it may not be locked, and XO no ' +
    'longer sees it: move it back by hand (docs/operations.md, XoImmutableSecurityWarnings), then find out who can ' +
    'write to the remote'
  );
}

// Whether the path is a link now; a folder above it made a file (ENOTDIR): no link there any more.
export function isLinked(file: string): boolean {
  try {
    return lstatSync(file, { throwIfNoEntry: false })?.isSymbolicLink() === true;
  } catch {
    return false;
  }
}

function relativeTo(remote: RemoteContext, file: string): string {
  return path.relative(remote.root, file).split(path.sep).join('/');
}

function leftReason(why: string): string {
  return (
    'a symbolic link where XO writes a folder: XO follows it and writes its backups behind it, where nothing is ' +
    `locked (the daemon never follows a link on a remote), and it was left in place: ${why}; put the real ` +
    'folder back in its place, then find out who can write to the remote'
  );
}
