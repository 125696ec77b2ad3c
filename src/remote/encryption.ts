import { createDecipheriv } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import type { RemoteConfig } from '../config/schema.js';
import { AppError, errnoCode } from '../errors.js';
import { readWhole, withHeldRemote } from './held.js';
import type { RemoteRoot } from './root.js';

// XO's remote encryption (@xen-orchestra/fs), read with the key the admin gave XO: every file XO writes but
// encryption.json is IV | ciphertext | auth tag, the key being the UTF-8 bytes of the 32-character key string, the
// algorithm the one encryption.json names (chacha20-poly1305 when that file is missing).

export type Decrypt = NonNullable<RemoteRoot['decrypt']>;

const ALGORITHMS = ['chacha20-poly1305', 'aes-256-gcm'] as const;
const DEFAULT_ALGORITHM = 'chacha20-poly1305';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
// A key file and encryption.json are a few bytes.
const SMALL = 4096;

// Pure: the decryption XO's encryptor undoes, for one algorithm and key.
export function decryptorFor(algorithm: (typeof ALGORITHMS)[number], key: Buffer): Decrypt {
  return (data) => {
    if (data.length < IV_BYTES + TAG_BYTES) return undefined;
    try {
      const iv = data.subarray(0, IV_BYTES);
      const options = { authTagLength: TAG_BYTES };
      const decipher =
        algorithm === 'aes-256-gcm'
          ? createDecipheriv(algorithm, key, iv, options)
          : createDecipheriv(algorithm, key, iv, options);
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      return Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
    } catch {
      return undefined;
    }
  };
}

// Pure: the algorithm encryption.json names (undefined content: the file is missing), or why it cannot be used.
export function algorithmOf(
  descriptor: string | undefined,
): (typeof ALGORITHMS)[number] | 'none' | { unknown: string } {
  if (descriptor === undefined) return DEFAULT_ALGORITHM;
  let algorithm: unknown;
  try {
    algorithm = (JSON.parse(descriptor) as { algorithm?: unknown }).algorithm;
  } catch {
    return { unknown: descriptor.slice(0, 100) };
  }
  if (algorithm === 'none') return 'none';
  return ALGORITHMS.find((a) => a === algorithm) ?? { unknown: String(algorithm).slice(0, 100) };
}

// Pure: the key bytes a key file holds (the key string, one final line end allowed); undefined when not 32 bytes.
export function keyOf(content: Buffer): Buffer | undefined {
  let end = content.length;
  if (content[end - 1] === 0x0a) end -= content[end - 2] === 0x0d ? 2 : 1;
  return end === KEY_BYTES ? Buffer.from(content.subarray(0, end)) : undefined;
}

// The key file as `check` and the daemon require it: a regular file owned by root, readable by root alone (mode
// 0600 or stricter), never followed through a link. Its content appears in no error.
export function readKeyFile(remote: Pick<RemoteConfig, 'id' | 'encryptionKeyFile'>): Buffer {
  const file = remote.encryptionKeyFile as string;
  const key = `remotes.${remote.id}.encryptionKeyFile`;
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    throw new AppError(
      'KEY_FILE_REFUSED',
      `Remote "${remote.id}": cannot open its key file ${file} (${errnoCode(error) ?? (error as Error).message})`,
      {
        value: file,
        hint: `write the key XO has for this remote in ${file} (a regular file, not a link), or fix ${key}`,
        cause: error,
      },
    );
  }
  try {
    const stats = fstatSync(fd);
    const problem = !stats.isFile()
      ? 'is not a regular file'
      : stats.uid !== 0
        ? `is owned by uid ${stats.uid}, not root`
        : (stats.mode & 0o077) !== 0
          ? `has mode ${(stats.mode & 0o777).toString(8).padStart(4, '0')}: others than root can read it`
          : undefined;
    if (problem !== undefined)
      throw new AppError('KEY_FILE_REFUSED', `Remote "${remote.id}": the key file ${file} ${problem}`, {
        value: file,
        hint: `run: chown root:root ${file} && chmod 600 ${file} (anyone who reads it can read every backup)`,
      });
    const bytes = stats.size > SMALL ? undefined : keyOf(readWhole(fd, stats.size) ?? Buffer.alloc(0));
    if (bytes === undefined)
      throw new AppError(
        'KEY_FILE_REFUSED',
        `Remote "${remote.id}": the key file ${file} does not hold a 32-character key`,
        {
          value: file,
          hint: "write there exactly the encryption key of the remote's settings in XO (32 characters, one final newline allowed)",
        },
      );
    return bytes;
  } finally {
    closeSync(fd);
  }
}

// How the daemon reads a remote: with its key file (checked against XO's canary, metadata.json), jsons, aliases and
// VHD parts are decrypted and read as on a plain remote; without it, `encrypted` says they are ciphertext. The remote's
// context keeps `decrypt`: every held remote opened from it reads through it (remote/held.ts).
export async function readingOf(
  remote: Pick<RemoteConfig, 'id' | 'encryptionKeyFile'>,
  root: RemoteRoot,
): Promise<{ encrypted: boolean; decrypt?: Decrypt }> {
  if (remote.encryptionKeyFile === undefined) return { encrypted: await isEncryptedRemote(root) };
  const key = readKeyFile(remote);
  const plain = { root: root.root, realRoot: root.realRoot };
  const [descriptor, canary] = await withHeldRemote(plain, (held) =>
    Promise.resolve([held.readSmall('encryption.json', SMALL), held.readSmall('metadata.json', SMALL)]),
  );
  // Neither file: XO has not set encryption up (yet); read again once XO has written there (daemon/remotes.ts).
  if (descriptor === undefined && canary === undefined) return { encrypted: false };
  const algorithm = algorithmOf(descriptor?.toString('utf8'));
  const where = `Remote "${remote.id}" (${root.root})`;
  if (algorithm === 'none' || typeof algorithm === 'object')
    throw new AppError(
      'KEY_NOT_USABLE',
      algorithm === 'none'
        ? `${where}: encryption.json says XO does not encrypt this remote, yet a key file is set`
        : `${where}: encryption.json names an algorithm XO does not write (${algorithm.unknown})`,
      {
        value: root.root,
        hint: `remove remotes.${remote.id}.encryptionKeyFile, or check that root is the right remote`,
      },
    );
  const decrypt = decryptorFor(algorithm, key);
  const opened = canary === undefined ? undefined : decrypt(canary);
  if (opened === undefined || !isJson(opened))
    throw new AppError(
      'KEY_NOT_USABLE',
      `${where}: the key in ${remote.encryptionKeyFile} does not decrypt XO's metadata.json: it is not this remote's key`,
      {
        value: remote.encryptionKeyFile,
        hint: "write there the encryption key of the remote's settings in XO; until then this remote is not protected",
      },
    );
  return { encrypted: false, decrypt };
}

// XO writes encryption.json (plain) and metadata.json (a canary, encrypted) when it sets up an encrypted remote; a
// plain remote has neither, or encryption.json saying "none". One that cannot be read counts as encrypted, so its
// backups are still locked once their json has settled. Read like any remote content: no FIFO, link or large file.
async function isEncryptedRemote(root: RemoteRoot): Promise<boolean> {
  try {
    return await withHeldRemote(root, (held) => {
      const descriptor = held.lstat('encryption.json');
      if (descriptor === undefined) return Promise.resolve(held.lstat('metadata.json') !== undefined);
      const text = held.readSmall('encryption.json', SMALL)?.toString('utf8');
      return Promise.resolve(text === undefined || (JSON.parse(text) as { algorithm?: unknown }).algorithm !== 'none');
    });
  } catch {
    return true;
  }
}

// The refusals that stop one remote, not the daemon (daemon/remotes.ts): its key file, fixed while the daemon runs.
export function isKeyRefusal(error: unknown): error is AppError {
  return error instanceof AppError && (error.code === 'KEY_FILE_REFUSED' || error.code === 'KEY_NOT_USABLE');
}

function isJson(data: Buffer): boolean {
  try {
    return JSON.parse(data.toString('utf8')) !== undefined;
  } catch {
    return false;
  }
}
