import { describe, expect, it } from 'vitest';
import { classifyFolder, isCompletionSignal } from '../../src/remote/patterns.js';

describe('classifyFolder', () => {
  it('finds the leaf folders of all three trees, pool metadata with its extra level', () => {
    expect(classifyFolder('xo-vm-backups/5f1c0e2a-0000-4000-8000-000000000000')).toEqual({ role: 'leaf', kind: 'vm' });
    expect(classifyFolder('xo-config-backups/sched/20261122T061500Z')).toEqual({ role: 'leaf', kind: 'config' });
    expect(classifyFolder('xo-pool-metadata-backups/sched/pool-uuid/20261122T061500Z')).toEqual({
      role: 'leaf',
      kind: 'pool',
    });
    // The prior art's pattern matched the pool tree one level too high; that level is a pool, not a backup.
    expect(classifyFolder('xo-pool-metadata-backups/sched/20261122T061500Z')).toEqual({
      role: 'structure',
      kind: 'poolOfSchedule',
    });
  });

  it('knows the structural folders that lead to leaves', () => {
    expect(classifyFolder('')).toEqual({ role: 'structure', kind: 'root' });
    expect(classifyFolder('xo-vm-backups')).toEqual({ role: 'structure', kind: 'vmTree' });
    expect(classifyFolder('xo-config-backups/sched')).toEqual({ role: 'structure', kind: 'configSchedule' });
    expect(classifyFolder('xo-pool-metadata-backups/sched/pool')).toEqual({
      role: 'structure',
      kind: 'poolOfSchedule',
    });
  });

  it("ignores XO's own folders and anything outside the three trees", () => {
    for (const folder of [
      'xo-vm-backups/.queue',
      'xo-vm-backups/.queue/clean-vm',
      'xo-vm-backups/vm.lock',
      'lost+found',
      'other/vm',
      'xo-config-backups/sched/not-a-date',
      'xo-config-backups/.sched',
      'xo-vm-backups/vm/vdis',
    ]) {
      expect(classifyFolder(folder), folder).toBeUndefined();
    }
  });
});

describe('isCompletionSignal', () => {
  it('is the run json in a VM folder and metadata.json in a date folder', () => {
    expect(isCompletionSignal('vm', '20261122T061500Z.json')).toBe(true);
    expect(isCompletionSignal('vm', 'cache.json.gz')).toBe(false);
    expect(isCompletionSignal('vm', '.20261122T061500Z.json')).toBe(false);
    expect(isCompletionSignal('vm', '20261122T061500Z.xva')).toBe(false);
    expect(isCompletionSignal('config', 'metadata.json')).toBe(true);
    expect(isCompletionSignal('pool', 'data')).toBe(false);
  });
});
