import { Writable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import type { LeafFolder, LockRequest } from '../../src/protect/context.js';
import type { RemoteContext } from '../../src/context/remote-context.js';
import type { LockResult } from '../../src/protect/locker.js';
import { ProvenBackups } from '../../src/protect/proven.js';
import { ProtectionScheduler } from '../../src/protect/scheduler.js';
import { createLogger } from '../../src/log/logger.js';

const remote = { id: 'r', root: '/r', realRoot: '/r', durationMs: 1 } as unknown as RemoteContext;
const folder = (name: string): LeafFolder => ({ remote, kind: 'vm', path: `/r/xo-vm-backups/${name}` });
const request = (f: LeafFolder, unit: string): LockRequest => ({
  remote,
  kind: 'vm',
  unit: `${f.path}/${unit}`,
  recursive: false,
  backup: { label: `${f.path}/x.json`, datetime: 'x', instant: 0, completedAt: 0 },
});

function harness(failing = new Set<string>()) {
  const reconciled: string[] = [];
  const lockCalls: string[][] = [];
  const scheduler = new ProtectionScheduler({
    reconcile: async (f) => {
      reconciled.push(f.path);
      return { requests: [request(f, 'a.json'), request(f, 'b.vhd')], refusals: [], provable: [] };
    },
    lock: async (requests): Promise<LockResult[]> => {
      lockCalls.push(requests.map((r) => r.unit));
      return requests.map((r) => ({
        request: r,
        outcome: failing.has(r.unit)
          ? { path: r.unit, status: 'failed', code: 'EIO', message: 'chattr: Input/output error' }
          : { path: r.unit, status: 'ok' },
        indexed: true,
      }));
    },
    clock: { now: () => 0 },
    log: createLogger('silent'),
  });
  return { scheduler, reconciled, lockCalls };
}

describe('ProtectionScheduler', () => {
  it('coalesces repeated hints for one folder into one reconcile', async () => {
    const { scheduler, reconciled } = harness();
    for (let i = 0; i < 50; i++) scheduler.enqueue(folder('vm-1'));
    await scheduler.idle();
    expect(reconciled).toEqual(['/r/xo-vm-backups/vm-1']);
  });

  it('locks the units of many backups in one shared batch', async () => {
    const { scheduler, lockCalls } = harness();
    for (let i = 0; i < 20; i++) scheduler.enqueue(folder(`vm-${i}`));
    await scheduler.idle();
    expect(lockCalls).toHaveLength(1);
    expect(lockCalls[0]).toHaveLength(40);
    expect(scheduler.record.counters).toMatchObject({ backupsLocked: 20, unitsLocked: 40, lockFailures: 0 });
  });

  it('reconciles a folder with news before the folders of a periodic scan, and in full only when a scan asked', async () => {
    const fulls: string[] = [];
    const reconciled: string[] = [];
    const tracking = new ProtectionScheduler({
      reconcile: async (f, full) => {
        reconciled.push(f.path);
        if (full) fulls.push(f.path);
        return { requests: [], refusals: [], provable: [] };
      },
      lock: async () => [],
      clock: { now: () => 0 },
      log: createLogger('silent'),
    });
    for (let i = 0; i < 600; i++) tracking.enqueue(folder(`old-${i}`), 'scan');
    tracking.enqueue(folder('new'));
    tracking.enqueue(folder('old-599'));
    await tracking.idle();
    expect(reconciled.indexOf('/r/xo-vm-backups/new')).toBeLessThan(2);
    expect(reconciled.indexOf('/r/xo-vm-backups/old-599')).toBeLessThan(2);
    expect(reconciled).toHaveLength(601);
    expect(fulls).toHaveLength(600);
    expect(fulls).not.toContain('/r/xo-vm-backups/new');
    await tracking.stop();
  });

  it('cuts a catch-up of many units into several rounds, reconciling each folder once and locking every unit', async () => {
    const reconciled: string[] = [];
    const batches: number[] = [];
    const scheduler = new ProtectionScheduler({
      reconcile: async (f) => {
        reconciled.push(f.path);
        return { requests: Array.from({ length: 100 }, (_, i) => request(f, `${i}.vhd`)), refusals: [], provable: [] };
      },
      lock: async (requests): Promise<LockResult[]> => {
        batches.push(requests.length);
        return requests.map((r) => ({ request: r, outcome: { path: r.unit, status: 'ok' }, indexed: true }));
      },
      clock: { now: () => 0 },
      log: createLogger('silent'),
    });
    for (let i = 0; i < 200; i++) scheduler.enqueue(folder(`vm-${i}`));
    await scheduler.idle();
    expect(new Set(reconciled).size).toBe(200);
    expect(reconciled).toHaveLength(200);
    expect(batches.reduce((a, b) => a + b, 0)).toBe(20_000);
    expect(batches.length).toBeGreaterThanOrEqual(3);
    expect(Math.max(...batches)).toBeLessThanOrEqual(4096 + 100);
    await scheduler.stop();
  });

  it('keeps the catch-up order across rounds: a folder a full round did not reach is next in line', async () => {
    const reconciled: string[] = [];
    const scheduler = new ProtectionScheduler({
      reconcile: async (f) => {
        reconciled.push(f.path);
        return { requests: Array.from({ length: 10 }, (_, i) => request(f, `${i}.vhd`)), refusals: [], provable: [] };
      },
      lock: async (requests): Promise<LockResult[]> =>
        requests.map((r) => ({ request: r, outcome: { path: r.unit, status: 'ok' }, indexed: true })),
      clock: { now: () => 0 },
      log: createLogger('silent'),
    });
    for (let i = 0; i < 1200; i++) scheduler.enqueue(folder(`vm-${i}`));
    await scheduler.idle();
    expect(reconciled).toEqual(Array.from({ length: 1200 }, (_, i) => folder(`vm-${i}`).path));
    await scheduler.stop();
  });

  // Rounds overlap (the next reconciled while one locks): a folder must not be reconciled while its own lock is in
  // flight, or it would ask for the same unit again and put it in two batches at once.
  function overlapping() {
    const events: string[] = [];
    const locked = new Set<string>();
    const lockCalls: string[][] = [];
    let inFlight = 0;
    let release: () => void = () => undefined;
    const firstLockHeld = new Promise<void>((resolve) => (release = resolve));
    // What the scheduler logs (a round's "reconciled" line once it is gathered), as the daemon's log shows it.
    const logged: { msg: string }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString('utf8').split('\n'))
          if (line !== '') logged.push(JSON.parse(line) as { msg: string });
        done();
      },
    });
    const scheduler = new ProtectionScheduler({
      // Level-triggered like the real one: asks for its unit until that unit is locked.
      reconcile: async (f) => {
        events.push(`reconcile ${f.path}`);
        const unit = `${f.path}/a.json`;
        return { requests: locked.has(unit) ? [] : [request(f, 'a.json')], refusals: [], provable: [] };
      },
      lock: async (requests): Promise<LockResult[]> => {
        lockCalls.push(requests.map((r) => r.unit));
        inFlight++;
        events.push(`lock ${lockCalls.length} start (${inFlight} in flight)`);
        if (lockCalls.length === 1) await firstLockHeld;
        for (const r of requests) locked.add(r.unit);
        events.push(`lock ${lockCalls.length} end`);
        inFlight--;
        return requests.map((r) => ({ request: r, outcome: { path: r.unit, status: 'ok' }, indexed: true }));
      },
      clock: { now: () => 0 },
      log: createLogger('debug', sink),
    });
    return { scheduler, events, lockCalls, logged, release: () => release() };
  }

  // Folder A's lock held in flight, folder B enqueued (and A again, if asked) and reconciled beside it.
  async function lockingAWhileBReconciles(enqueueAAgain: boolean) {
    const fixture = overlapping();
    const [a, b] = [folder('vm-a'), folder('vm-b')];
    fixture.scheduler.enqueue(a);
    await vi.waitFor(() => expect(fixture.lockCalls).toHaveLength(1));
    if (enqueueAAgain) fixture.scheduler.enqueue(a);
    fixture.scheduler.enqueue(b);
    await vi.waitFor(() => expect(fixture.events).toContain(`reconcile ${b.path}`));
    return { ...fixture, a, b };
  }

  it('reconciles the next round while one locks, but not a folder whose own lock is in flight', async () => {
    // While A's lock is in flight: an event for A again, and a new folder B.
    const { scheduler, events, lockCalls, release, a, b } = await lockingAWhileBReconciles(true);
    let idle = false;
    const idled = scheduler.idle().then(() => (idle = true));
    // B was reconciled beside A's lock, after A's place in the queue: A waits for it, and B's batch waits for A's.
    expect(events.filter((e) => e === `reconcile ${a.path}`)).toHaveLength(1);
    expect(lockCalls).toHaveLength(1);
    // A folder C queued after idle() was asked is reconciled beside A's lock too: the scheduler went on working, and
    // all the while was neither idle nor taking A again.
    const c = folder('vm-c');
    scheduler.enqueue(c);
    await vi.waitFor(() => expect(events).toContain(`reconcile ${c.path}`));
    expect(idle).toBe(false);
    expect(events.filter((e) => e === `reconcile ${a.path}`)).toHaveLength(1);
    expect(lockCalls).toHaveLength(1);
    release();
    await idled;
    expect(events.indexOf(`reconcile ${b.path}`)).toBeLessThan(events.indexOf('lock 1 end'));
    expect(events.indexOf(`reconcile ${c.path}`)).toBeLessThan(events.indexOf('lock 1 end'));
    // A is looked at again only once its lock is done: it finds its unit locked, and asks for nothing.
    expect(events.lastIndexOf(`reconcile ${a.path}`)).toBeGreaterThan(events.indexOf('lock 1 end'));
    expect(lockCalls.flat().sort()).toEqual([`${a.path}/a.json`, `${b.path}/a.json`, `${c.path}/a.json`]);
    expect(events.filter((e) => e.includes('in flight'))).toEqual([
      'lock 1 start (1 in flight)',
      'lock 2 start (1 in flight)',
    ]);
    await scheduler.stop();
  });

  it('stops only once the round locking and the round reconciled beside it are locked', async () => {
    const { scheduler, events, lockCalls, logged, release, a, b } = await lockingAWhileBReconciles(false);
    let stopped = false;
    const stopping = scheduler.stop().then(() => (stopped = true));
    // Told to stop, the round reconciled beside A's lock (B's) stops taking folders and is gathered (logged): the stop
    // must still wait for A's lock, and for B's after it.
    await vi.waitFor(() => expect(logged.filter((l) => l.msg.startsWith('reconciled '))).toHaveLength(2));
    expect(stopped).toBe(false);
    expect(lockCalls).toHaveLength(1);
    release();
    await stopping;
    expect(lockCalls).toEqual([[`${a.path}/a.json`], [`${b.path}/a.json`]]);
    expect(events.at(-1)).toBe('lock 2 end');
  });

  it('takes a proof back when a unit of the backup fails to lock, and retries a full proof as a full proof', async () => {
    const identity = { dev: '1', ino: '2', size: '3', mtimeNs: '4', ctimeNs: '5' };
    const proven = new ProvenBackups();
    const f = folder('vm-1');
    proven.prove(f.path, 'x.json', identity);
    const fulls: boolean[] = [];
    let attempts = 0;
    const scheduler = new ProtectionScheduler({
      reconcile: async (_f, full) => {
        fulls.push(full);
        return { requests: [request(f, 'b.vhd')], refusals: [], provable: [{ json: `${f.path}/x.json`, identity }] };
      },
      lock: async (requests): Promise<LockResult[]> =>
        requests.map((r) => ({
          request: r,
          outcome:
            attempts++ === 0
              ? { path: r.unit, status: 'failed', code: 'EIO', message: 'chattr: Input/output error' }
              : { path: r.unit, status: 'ok' },
          indexed: true,
        })),
      proven: () => proven,
      clock: { now: () => Date.now() },
      log: createLogger('silent'),
      retryDelayMs: 5,
    });
    scheduler.enqueue(f, 'scan');
    await scheduler.idle();
    expect(proven.isProven(f.path, 'x.json', identity)).toBe(false);
    await vi.waitFor(() => expect(fulls).toEqual([true, true]));
    await scheduler.idle();
    expect(proven.isProven(f.path, 'x.json', identity)).toBe(true);
    await scheduler.stop();
  });

  it('counts a unit that failed to lock and keeps going with the rest', async () => {
    const { scheduler } = harness(new Set(['/r/xo-vm-backups/vm-1/b.vhd']));
    scheduler.enqueue(folder('vm-1'));
    scheduler.enqueue(folder('vm-2'));
    await scheduler.idle();
    expect(scheduler.record.counters).toMatchObject({ backupsLocked: 2, unitsLocked: 3, lockFailures: 1 });
    await scheduler.stop();
  });

  it('tries every folder of a round again when chattr cannot even be spawned', async () => {
    let calls = 0;
    const locked: string[] = [];
    const scheduler = new ProtectionScheduler({
      // Level-triggered like the real one: a folder asks for its unit until that unit is locked.
      reconcile: async (f) => ({
        requests: locked.includes(`${f.path}/a.json`) ? [] : [request(f, 'a.json')],
        refusals: [],
        provable: [],
      }),
      lock: async (requests): Promise<LockResult[]> => {
        if (calls++ === 0) throw Object.assign(new Error('spawn chattr EAGAIN'), { code: 'EAGAIN' });
        locked.push(...requests.map((r) => r.unit));
        return requests.map((r) => ({ request: r, outcome: { path: r.unit, status: 'ok' }, indexed: true }));
      },
      clock: { now: () => Date.now() },
      log: createLogger('silent'),
      retryDelayMs: 20,
    });
    scheduler.enqueue(folder('vm-1'));
    scheduler.enqueue(folder('vm-2'));
    await scheduler.idle();
    expect(locked).toEqual([]);
    await vi.waitFor(
      () => expect(locked.sort()).toEqual(['/r/xo-vm-backups/vm-1/a.json', '/r/xo-vm-backups/vm-2/a.json']),
      { timeout: 10_000 },
    );
    await scheduler.stop();
  });

  it('tries a folder that keeps failing less and less often, and from the start again once it succeeds', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      const tries: number[] = [];
      let failing = true;
      const scheduler = new ProtectionScheduler({
        reconcile: async (f) => {
          tries.push(Date.now());
          return { requests: [request(f, 'a.vhd')], refusals: [], provable: [] };
        },
        lock: async (requests): Promise<LockResult[]> =>
          requests.map((r) => ({
            request: r,
            outcome: failing
              ? { path: r.unit, status: 'failed', code: 'EIO', message: 'chattr: Input/output error' }
              : { path: r.unit, status: 'ok' },
            indexed: !failing,
          })),
        clock: { now: () => Date.now() },
        log: createLogger('silent'),
      });
      scheduler.enqueue(folder('vm'));
      const advance = async (ms: number): Promise<void> => {
        await scheduler.idle();
        await vi.advanceTimersByTimeAsync(ms);
        await scheduler.idle();
      };
      for (let i = 0; i < 8; i++) await advance(10 * 60_000);
      const gaps = tries.slice(1).map((t, i) => (t - tries[i]!) / 1000);
      // Before: every 10 s, forever (480 tries in 80 minutes).
      expect(gaps.slice(0, 9)).toEqual([10, 20, 40, 80, 160, 320, 600, 600, 600]);
      expect(scheduler.backingOff()).toBe(1);

      failing = false;
      await advance(10 * 60_000);
      expect(scheduler.backingOff()).toBe(0);
      failing = true;
      const before = tries.length;
      scheduler.enqueue(folder('vm'));
      await advance(11_000);
      // Failed once more after the success: tried again after the base delay, not ten minutes.
      expect(tries.length - before).toBe(2);
      await scheduler.stop();
    } finally {
      vi.useRealTimers();
    }
  });
});
