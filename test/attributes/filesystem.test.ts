import { describe, expect, it } from 'vitest';
import { filesystemTypeOf, parseMountinfo } from '../../src/attributes/filesystem.js';

const mountinfo = [
  '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw',
  '30 22 0:26 / /srv rw shared:2 - xfs /dev/vdb rw',
  '31 30 0:27 / /srv/nfs\\040share rw shared:3 - nfs4 host:/export rw',
  '32 22 0:28 / /tmp rw shared:4 - tmpfs tmpfs rw',
].join('\n');

describe('filesystemTypeOf', () => {
  it('picks the deepest mount holding the path, unescaping spaces', () => {
    const mounts = parseMountinfo(mountinfo);
    expect(filesystemTypeOf('/srv/backups', mounts)).toBe('xfs');
    expect(filesystemTypeOf('/srv/nfs share/x', mounts)).toBe('nfs4');
    expect(filesystemTypeOf('/srvx', mounts)).toBe('ext4');
    expect(filesystemTypeOf('/tmp', mounts)).toBe('tmpfs');
  });
});
