import { lstatSync } from 'node:fs';
import path from 'node:path';
import { withHeldRemote } from '../remote/held.js';
import { putBackLinkedFolder } from '../remote/put-back.js';
import type { LeafFolder, Refusal } from './context.js';

// A symbolic link where XO writes a folder (a VM folder, xo-vm-backups, a schedule's folder): XO's handler follows it
// and writes its backups behind it, where the daemon, which never follows a link on a remote, locks nothing. Where the
// link leads to a folder of the remote that whoever made the link could have moved there (remote/put-back.ts), that
// folder is put back in the link's place and said once; the caller then looks at it as at any other. Otherwise the link
// is said at every look, as a security warning and a coverage gap, until an admin puts the folder back.
export type LinkedFolder = { putBack: true; warning: Refusal } | { putBack: false; refusal: Refusal | undefined };

export async function lookAtLinkedFolder(folder: LeafFolder, now: number): Promise<LinkedFolder> {
  if (!isLinked(folder.path)) return { putBack: false, refusal: undefined };
  const link = path.relative(folder.remote.root, folder.path).split(path.sep).join('/');
  const done = await withHeldRemote(folder.remote, async (held) => putBackLinkedFolder(held, link, now));
  if (done.result === 'no-link') return { putBack: false, refusal: undefined };
  if (done.result === 'left')
    return { putBack: false, refusal: { path: folder.path, reason: leftReason(done.reason), security: true } };
  const reason =
    `a symbolic link where XO writes a folder, to ${done.target}: that folder was put back in its place (what XO ` +
    `wrote behind the link is locked now), the link moved aside to ${done.aside}; find out who can write to the remote`;
  return { putBack: true, warning: { path: folder.path, reason, security: true } };
}

// Whether the folder's path is a link now; a folder above it made a file (ENOTDIR): no link there any more.
export function isLinked(file: string): boolean {
  try {
    return lstatSync(file, { throwIfNoEntry: false })?.isSymbolicLink() === true;
  } catch {
    return false;
  }
}

function leftReason(why: string): string {
  return (
    'a symbolic link where XO writes a folder: XO follows it and writes its backups behind it, where nothing is ' +
    `locked (the daemon never follows a link on a remote), and the folder was not put back: ${why}; put the real ` +
    'folder back in its place, then find out who can write to the remote'
  );
}
