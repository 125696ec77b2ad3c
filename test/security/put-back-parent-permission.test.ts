import { chmod, chown, lchown, lstat, mkdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startDaemon, type LogLine } from '../support/daemon.js';
import { tempRemote, waitFor } from '../support/remote.js';

// docs/security.md: "The daemon moves only what whoever made the link could have moved there": a folder of XO's uid
// inside a folder XO cannot write (or even search), such as lost+found when the remote root is a filesystem's top, or
// an admin's root-only folder on the remote, stays where it is; an empty folder takes the link's place.
const XO_UID = 4242;

function saidOf(logs: readonly LogLine[], link: string): string[] {
  return logs.filter((l) => l.security === true && l.path === link).map((l) => l.msg);
}

describe('a link to a folder of the link’s owner, inside a folder only root may write', () => {
  it("is not moved by the daemon: an empty folder of XO's takes the link's place", async () => {
    const remote = await tempRemote();
    const vms = path.join(remote.root, 'xo-vm-backups');
    await mkdir(vms);
    await chown(vms, XO_UID, XO_UID);
    const closed = path.join(remote.root, 'lost+found');
    await mkdir(path.join(closed, '#1234'), { recursive: true });
    await chmod(closed, 0o700);
    await chown(path.join(closed, '#1234'), XO_UID, XO_UID);
    const { logs } = await startDaemon(remote, { config: { rescanEveryMs: 500 } });

    // The attacker, as XO's uid: it cannot list, enter or write lost+found, but it can write this link's text.
    const link = path.join(vms, 'vm-1');
    await symlink('../lost+found/#1234', link);
    await lchown(link, XO_UID, XO_UID);

    await waitFor(() => saidOf(logs, link).length > 0, 'the link to be said');
    expect(saidOf(logs, link)[0]).toMatch(/not moved \(.*not the link's owner's\), an empty folder was made/);
    expect((await lstat(path.join(closed, '#1234'))).isDirectory()).toBe(true);
    const made = await lstat(link);
    expect(made.isDirectory()).toBe(true);
    expect([made.uid, made.gid]).toEqual([XO_UID, XO_UID]);
  }, 20_000);
});
