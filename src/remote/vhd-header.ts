// The few fields of a VHD's footer and header that tell its place in a chain (the VHD specification, as vhd-lib
// writes it): the disk type, where the header is, and the parent's name. Pure: buffers in, facts out.

export const FOOTER_SIZE = 512;
export const HEADER_SIZE = 1024;

const DIFFERENCING = 4;
const DISK_TYPE_OFFSET = 60;
const DATA_OFFSET_OFFSET = 16;
const PARENT_NAME_OFFSET = 64;
const PARENT_NAME_SIZE = 512;

export type VhdLink =
  | { kind: 'base' }
  | { kind: 'delta'; parent: string }
  // Not readable as a VHD (damaged, encrypted, still being written): its chain is not known.
  | { kind: 'unknown'; why: string };

// Where a flat VHD's header starts, from its footer (the copy at the start of the file); undefined if not a VHD.
export function headerOffset(footer: Buffer): number | undefined {
  if (footer.length < FOOTER_SIZE || footer.toString('latin1', 0, 8) !== 'conectix') return undefined;
  const offset = footer.readBigUInt64BE(DATA_OFFSET_OFFSET);
  return offset > BigInt(Number.MAX_SAFE_INTEGER) ? undefined : Number(offset);
}

// A base (fixed or dynamic) ends a chain; a differencing disk names its parent, a sibling in the same VDI folder.
export function vhdLink(footer: Buffer, header: Buffer | undefined): VhdLink {
  if (footer.length < FOOTER_SIZE || footer.toString('latin1', 0, 8) !== 'conectix')
    return { kind: 'unknown', why: 'no VHD footer' };
  if (footer.readUInt32BE(DISK_TYPE_OFFSET) !== DIFFERENCING) return { kind: 'base' };
  if (header === undefined || header.length < HEADER_SIZE || header.toString('latin1', 0, 8) !== 'cxsparse')
    return { kind: 'unknown', why: 'no VHD header' };
  const name = decodeUtf16be(header.subarray(PARENT_NAME_OFFSET, PARENT_NAME_OFFSET + PARENT_NAME_SIZE));
  return name === ''
    ? { kind: 'unknown', why: 'a differencing disk without a parent name' }
    : { kind: 'delta', parent: name };
}

function decodeUtf16be(bytes: Buffer): string {
  let end = 0;
  while (end + 1 < bytes.length && (bytes[end] !== 0 || bytes[end + 1] !== 0)) end += 2;
  const swapped = Buffer.from(bytes.subarray(0, end));
  swapped.swap16();
  return swapped.toString('utf16le');
}
