import { existsSync, lstatSync } from 'node:fs';
import type { AttributesAdapter, PathOutcome, Target, Within } from '../../src/attributes/adapter.js';
import { identityOf } from '../../src/remote/identity.js';

// An in-memory stand-in for chattr, for unit tests of logic; the contract suite runs it beside the real adapter.
export class FakeAttributes implements AttributesAdapter {
  readonly immutable = new Set<string>();
  readonly calls: { targets: Target[]; immutable: boolean }[] = [];
  failFor = new Set<string>();

  async setImmutable(_within: Within, targets: readonly Target[], immutable: boolean): Promise<PathOutcome[]> {
    this.calls.push({ targets: [...targets], immutable });
    return targets.map(({ path }): PathOutcome => {
      if (this.failFor.has(path))
        return {
          path,
          status: 'failed',
          code: 'EIO',
          message: `chattr: Input/output error while setting flags on ${path}`,
        };
      if (!existsSync(path)) return { path, status: 'vanished' };
      if (immutable) this.immutable.add(path);
      else this.immutable.delete(path);
      const stats = lstatSync(path, { bigint: true });
      // What the real helper returns: the identity of what it acted on.
      const identity = identityOf(stats);
      return { path, status: 'ok', identity };
    });
  }

  // As a clear would answer, nothing changed.
  async checkClear(_within: Within, targets: readonly Target[]): Promise<PathOutcome[]> {
    return targets.map(({ path }): PathOutcome => {
      if (this.failFor.has(path))
        return { path, status: 'failed', code: 'EIO', message: `Input/output error: ${path}` };
      return existsSync(path) ? { path, status: 'ok' } : { path, status: 'vanished' };
    });
  }

  async isImmutable(_within: Within, paths: readonly string[]): Promise<Map<string, boolean | undefined>> {
    return new Map(paths.map((p) => [p, existsSync(p) ? this.immutable.has(p) : undefined]));
  }
}
