import { describe, expect, it } from 'vitest';
import { indexListing, type ListedEntry } from '../../src/remote/model.js';
import { jsonsOfFlatChain } from '../../src/backup/flat-jsons.js';

const file = (name: string): ListedEntry => ({ name, isFile: true, isDirectory: false });
const dir = (name: string): ListedEntry => ({ name, isFile: false, isDirectory: true });
const VDI = 'vdis/job/vdi';

function listing(top: ListedEntry[]) {
  return indexListing(top, []);
}

describe('jsonsOfFlatChain: the json of each flat VHD a newer backup claims', () => {
  it('claims the json named after each flat VHD of the chain, once: cleanVm would delete it while its disk is locked', () => {
    const top = [file('20261201T010000Z.json'), file('20261202T010000Z.json'), file('cache.json.gz'), dir('vdis')];
    const chain = [
      { path: `${VDI}/20261201T010000Z.vhd`, recursive: false },
      { path: `${VDI}/20261202T010000Z.vhd`, recursive: false },
      { path: 'vdis/job/other/20261202T010000Z.vhd', recursive: false },
    ];
    expect(jsonsOfFlatChain(chain, listing(top))).toEqual([
      { path: '20261201T010000Z.json', recursive: false },
      { path: '20261202T010000Z.json', recursive: false },
    ]);
  });

  it('leaves VHD directories and aliases alone: XO reads them without opening them read-write', () => {
    const top = [file('20261201T010000Z.json')];
    const chain = [
      { path: `${VDI}/20261201T010000Z.alias.vhd`, recursive: false },
      { path: `${VDI}/data/20261201T010000Z.vhd`, recursive: true },
    ];
    expect(jsonsOfFlatChain(chain, listing(top))).toEqual([]);
  });

  it('claims nothing XO did not write: no json by that name, a folder named like one, a dot name, a name without a datetime', () => {
    const top = [dir('20261203T010000Z.json'), file('.20261204T010000Z.json'), file('base.json')];
    const chain = ['20261201T010000Z', '20261203T010000Z', '.20261204T010000Z', 'base'].map((n) => ({
      path: `${VDI}/${n}.vhd`,
      recursive: false,
    }));
    expect(jsonsOfFlatChain(chain, listing(top))).toEqual([]);
  });
});
