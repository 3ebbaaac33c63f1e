/**
 * Group commit (maxCommitsInFlight > 1): later runs execute while earlier
 * commits wait for onCommit (their fsync), but nothing that depends on a
 * commit (knowledge, afterCommit, the submitter, reports) sees it before it
 * is durable, commits settle in order, and a failed commit abandons itself
 * and everything after it.
 */
import { describe, expect, it } from 'vitest';
import { Engine, event, factsOf, type RunCommit } from '../src/index';

const ev = (name: string, payload: number) => ({ kind: 'internal' as const, name, payload });

/** An onCommit whose "fsyncs" the test completes (or fails) by hand, in order. */
function manualDisk() {
  const pending: Array<{ commit: RunCommit; resolve: () => void; reject: (e: Error) => void }> = [];
  return {
    pending,
    onCommit: (commit: RunCommit) => new Promise<void>((resolve, reject) => pending.push({ commit, resolve, reject })),
  };
}

const counter = [
  {
    name: 'count',
    when: event('add'),
    run(ctx: { event?: { payload?: unknown } | undefined; get<T>(k: string): T | undefined; set(k: string, v: number): void }) {
      ctx.set('n', (ctx.get<number>('n') ?? 0) + (ctx.event?.payload as number));
    },
  },
];

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

describe('group commit', () => {
  it('runs ahead of the fsync, yet knowledge, afterCommit and submitters only see durable commits, in order', async () => {
    const disk = manualDisk();
    const engine = new Engine({ handlers: counter as never, onCommit: disk.onCommit, maxCommitsInFlight: 8 });
    const seen: number[] = [];
    engine.afterCommit((c) => void seen.push(factsOf(c.kb)['n'] as number));
    const settled: number[] = [];
    const runs = [1, 2, 3].map((x, i) => engine.submit(ev('add', x)).then(() => void settled.push(i)));
    await flush();
    // All three ran (each on top of the previous), none is durable yet.
    expect(disk.pending.map((p) => factsOf(p.commit.kb)['n'])).toEqual([1, 3, 6]);
    expect(factsOf(engine.knowledge)).toEqual({});
    expect(seen).toEqual([]);
    expect(settled).toEqual([]);
    expect(engine.status().state).toBe('running');
    // The first fsync completes: exactly the first commit shows.
    disk.pending[0]!.resolve();
    await flush();
    expect(factsOf(engine.knowledge)).toEqual({ n: 1 });
    expect(seen).toEqual([1]);
    expect(settled).toEqual([0]);
    disk.pending[1]!.resolve();
    disk.pending[2]!.resolve();
    await Promise.all(runs);
    expect(seen).toEqual([1, 3, 6]);
    expect(settled).toEqual([0, 1, 2]);
    expect(factsOf(engine.knowledge)).toEqual({ n: 6 });
    expect(engine.status().state).toBe('idle');
    expect(engine.history().map((r) => r.outcome)).toEqual(['committed', 'committed', 'committed']);
  });

  it('never has more than maxCommitsInFlight commits waiting', async () => {
    const disk = manualDisk();
    const engine = new Engine({ handlers: counter as never, onCommit: disk.onCommit, maxCommitsInFlight: 2 });
    const runs = [1, 1, 1, 1, 1].map((x) => engine.submit(ev('add', x)));
    await flush();
    expect(disk.pending).toHaveLength(2);
    for (let i = 0; i < 5; i++) {
      await flush();
      disk.pending[i]!.resolve();
    }
    await Promise.all(runs);
    expect(factsOf(engine.knowledge)).toEqual({ n: 5 });
  });

  it('a failed commit abandons it and every later one: their events run again after resolve, nothing counted twice', async () => {
    const disk = manualDisk();
    const engine = new Engine({ handlers: counter as never, onCommit: disk.onCommit, maxCommitsInFlight: 8 });
    const seen: number[] = [];
    engine.afterCommit((c) => void seen.push(factsOf(c.kb)['n'] as number));
    const runs = [1, 10, 100].map((x) => engine.submit(ev('add', x)));
    await flush();
    expect(disk.pending).toHaveLength(3);
    disk.pending[0]!.resolve();
    disk.pending[1]!.reject(new Error('disk full'));
    // (The third was written after the failed one: a log refuses it too.)
    disk.pending[2]!.reject(new Error('store failed'));
    await flush();
    expect(engine.status()).toMatchObject({ state: 'error', queued: 2, error: { code: 'ENGINE_ERR_STATE' } });
    expect(engine.status().error!.message).toMatch(/disk full/);
    expect(factsOf(engine.knowledge)).toEqual({ n: 1 });
    expect(seen).toEqual([1]);
    // The disk is back: the abandoned events run again, on the durable state.
    engine.resolve();
    await flush();
    expect(disk.pending.slice(3).map((p) => factsOf(p.commit.kb)['n'])).toEqual([11, 111]);
    for (const p of disk.pending.slice(3)) p.resolve();
    await Promise.all(runs);
    expect(factsOf(engine.knowledge)).toEqual({ n: 111 });
    expect(seen).toEqual([1, 11, 111]);
  });

  it('what a beforeCommit hook staged is abandoned with its commit: numbers staged in abandoned commits are staged again, none skipped', async () => {
    const disk = manualDisk();
    const engine = new Engine({ handlers: counter as never, onCommit: disk.onCommit, maxCommitsInFlight: 8 });
    // A sequence number per commit, staged by the hook on top of the head (as relation links number their messages).
    engine.beforeCommit((tx) => tx.updateRelationState<{ seq: number }>('@out/x', (d) => ({ seq: (d?.seq ?? 0) + 1 })));
    const seqOf = (kb: RunCommit['kb']) => (kb.relations['@out/x'] as { seq: number } | undefined)?.seq;
    const durable: number[] = [];
    engine.afterCommit((c) => void durable.push(seqOf(c.kb)!));
    const runs = [1, 10, 100].map((x) => engine.submit(ev('add', x)));
    await flush();
    expect(disk.pending.map((p) => seqOf(p.commit.kb))).toEqual([1, 2, 3]);
    disk.pending[0]!.resolve();
    disk.pending[1]!.reject(new Error('disk full'));
    disk.pending[2]!.reject(new Error('store failed'));
    await flush();
    expect(seqOf(engine.knowledge)).toBe(1);
    engine.resolve();
    await flush();
    expect(disk.pending.slice(3).map((p) => seqOf(p.commit.kb))).toEqual([2, 3]);
    for (const p of disk.pending.slice(3)) p.resolve();
    await Promise.all(runs);
    expect(durable).toEqual([1, 2, 3]);
  });

  it('lets the event loop turn while it runs ahead, so the disk works while runs execute', async () => {
    // A disk that completes on the next turn of the event loop, as real I/O does.
    const engine = new Engine({ handlers: counter as never, onCommit: () => new Promise<void>((r) => setImmediate(r)), maxCommitsInFlight: 1000 });
    let durable = 0;
    engine.afterCommit(() => void durable++);
    let atFirstTurn: { executed: number; durable: number } | undefined;
    setImmediate(() => (atFirstTurn = { executed: engine.status().runs, durable }));
    await Promise.all(Array.from({ length: 500 }, () => engine.submit(ev('add', 1))));
    // Without a turn, all 500 runs would execute (on microtasks) before any I/O completion.
    expect(atFirstTurn!.executed).toBeLessThan(100);
    expect(atFirstTurn!.executed).toBeGreaterThan(0);
    expect(factsOf(engine.knowledge)).toEqual({ n: 500 });
  });

  it('refuses a bad bound', () => {
    expect(() => new Engine({ handlers: [], maxCommitsInFlight: 0 })).toThrow(/maxCommitsInFlight/);
  });
});
