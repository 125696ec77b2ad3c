import { describe, expect, it } from 'vitest';
import { headerOffset, vhdLink } from '../../src/remote/vhd-header.js';

function footer(diskType: number, dataOffset = 512): Buffer {
  const buffer = Buffer.alloc(512);
  buffer.write('conectix', 0, 'latin1');
  buffer.writeBigUInt64BE(BigInt(dataOffset), 16);
  buffer.writeUInt32BE(diskType, 60);
  return buffer;
}

function header(parent: string): Buffer {
  const buffer = Buffer.alloc(1024);
  buffer.write('cxsparse', 0, 'latin1');
  const name = Buffer.from(parent, 'utf16le');
  name.swap16();
  name.copy(buffer, 64);
  return buffer;
}

describe('vhdLink (footer and header as vhd-lib writes them)', () => {
  it('ends a chain at a dynamic or fixed disk', () => {
    expect(vhdLink(footer(3), header(''))).toEqual({ kind: 'base' });
    expect(vhdLink(footer(2), undefined)).toEqual({ kind: 'base' });
  });

  it("reads a differencing disk's parent name, UTF-16 big-endian", () => {
    expect(vhdLink(footer(4), header('20261201T010000Z.alias.vhd'))).toEqual({
      kind: 'delta',
      parent: '20261201T010000Z.alias.vhd',
    });
  });

  it('calls anything else unknown, never a base: its chain is then protected on the safe side', () => {
    expect(vhdLink(Buffer.alloc(512), undefined).kind).toBe('unknown');
    expect(vhdLink(footer(4), undefined).kind).toBe('unknown');
    expect(vhdLink(footer(4), Buffer.alloc(1024)).kind).toBe('unknown');
    expect(vhdLink(footer(4), header('')).kind).toBe('unknown');
  });

  it("finds a flat VHD's header from its footer copy", () => {
    expect(headerOffset(footer(4, 512))).toBe(512);
    expect(headerOffset(Buffer.alloc(512))).toBeUndefined();
  });
});
