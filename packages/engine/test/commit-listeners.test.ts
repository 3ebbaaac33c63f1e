import { VirtualClock } from '@rhizome/clock';
import { describe, expect, it } from 'vitest';
import { Engine, event, factsOf, type EngineError, type RunCommit } from '../src/index';

const ev = (name: string) => ({ kind: 'internal' as const, name });

async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
  await new Promise((r) => setImmediate(r));
}

describe('a failure that a retry heals is history, not state (issue 13 item 1)', () => {
  it('clears the error once the retry commits; resolve then has nothing to resolve', async () => {
    const clock = new VirtualClock();
    let failures = 1;
    const engine = new Engine({
      handlers: [{ name: 'flaky', when: event('go'), run: (ctx) => { if (failures-- > 0) throw new Error('port in use'); ctx.set('done'); } }],
      clock,
      random: () => 0.5,
      retry: { limit: 3, baseMs: 10, maxMs: 100, jitter: 0 },
    });
    const done = engine.submit(ev('go'));
    await flush();
    expect(engine.status()).toMatchObject({ state: 'retrying', error: { handler: 'flaky', attempts: 1 } });
    clock.advanceSync(10);
    await done;
    const status = engine.status();
    expect(status.state).toBe('idle');
    expect(status.error).toBeUndefined();
    expect(factsOf(engine.knowledge)).toEqual({ done: true });
    // The failure stays in the history.
    expect(engine.history().map((r) => r.outcome)).toEqual(['failed', 'committed']);
    expect(() => engine.resolve()).toThrow(/nothing to resolve/);
  });
});

describe('afterCommit listeners', () => {
  it('see each committed run once, in order, after knowledge shows it and before the submitter hears of it', async () => {
    const seen: string[] = [];
    let order: string[] = [];
    const engine = new Engine({
      handlers: [
        { name: 'a', when: event('a'), run: (ctx) => ctx.set('a') },
        { name: 'bad', when: event('bad'), run: () => { throw new Error('no'); } },
      ],
      retry: { limit: 1 },
    });
    engine.afterCommit((c: RunCommit) => {
      seen.push(`${c.runId}:${c.report.eventLabel}:${String(factsOf(engine.knowledge)['a'] ?? false)}`);
      order.push('listener');
    });
    const first = engine.submit(ev('a')).then(() => order.push('submitter'));
    await first;
    expect(order).toEqual(['listener', 'submitter']);
    order = [];
    void engine.submit(ev('bad')).catch(() => {});
    await flush();
    expect(engine.status().state).toBe('error');
    expect(seen).toEqual(['run-1:a:true']); // the failed run never reached the listener
  });

  it('a listener that throws or rejects reaches onError, and the engine carries on', async () => {
    const errors: EngineError[] = [];
    const engine = new Engine({
      handlers: [{ name: 'a', when: event('a'), run: (ctx) => ctx.set('n', (ctx.get<number>('n') ?? 0) + 1) }],
      onError: (e) => errors.push(e),
    });
    const off = engine.afterCommit(() => { throw new Error('sync boom'); });
    engine.afterCommit(async () => { throw new Error('async boom'); });
    engine.onReport(() => { throw new Error('report boom'); });
    await engine.submit(ev('a'));
    await flush();
    expect(errors.map((e) => e.code)).toEqual(['ENGINE_ERR_LISTENER', 'ENGINE_ERR_LISTENER', 'ENGINE_ERR_LISTENER']);
    expect(errors.map((e) => e.message).join('\n')).toMatch(/sync boom[\s\S]*async boom|report boom/);
    off();
    await engine.submit(ev('a'));
    await flush();
    expect(errors).toHaveLength(5); // the removed listener is not called again
    expect(factsOf(engine.knowledge)).toEqual({ n: 2 });
  });
});

describe('beforeCommit hooks', () => {
  const publish = { name: 'publish', when: event('publish'), run: (ctx: import('../src/index').HandlerContext) => ctx.updateRelationState('ep', () => ({ v: 1 })) };

  it('stage into the run’s own commit (one set of patches), seeing which relation states the run changed', async () => {
    const commits: RunCommit[] = [];
    const seen: string[][] = [];
    const engine = new Engine({ handlers: [publish], onCommit: (c) => void commits.push(c) });
    engine.beforeCommit((tx, changed) => {
      seen.push([...changed]);
      if (changed.includes('ep')) tx.updateRelationState('@out/ep', () => ({ queued: tx.relationState('ep') }));
    });
    await engine.submit(ev('publish'));
    await engine.submit(ev('other'));
    expect(seen).toEqual([['ep'], []]);
    expect(commits).toHaveLength(2);
    expect(commits[0]!.patches.map((p) => p.path.join('.'))).toEqual(expect.arrayContaining(['relations.ep', 'relations.@out/ep']));
    expect(commits[0]!.report.relationsChanged).toEqual(['@out/ep', 'ep']);
    expect(engine.knowledge.relations['@out/ep']).toEqual({ queued: { v: 1 } });
  });

  it('are not called for a run that rolls back; a hook that throws fails the run, which commits nothing', async () => {
    let calls = 0;
    let fail = true;
    const engine = new Engine({
      handlers: [publish, { name: 'bad', when: event('bad'), run: (ctx) => { ctx.updateRelationState('ep', () => ({ v: 2 })); throw new Error('no'); } }],
      retry: { limit: 1 },
    });
    const off = engine.beforeCommit((tx) => {
      calls += 1;
      if (fail) throw new Error('hook bug');
      tx.removeRelationState('ep');
    });
    await expect(engine.submit(ev('publish'), { failFast: true })).rejects.toMatchObject({ code: 'ENGINE_ERR_RUN_FAILED', message: expect.stringMatching(/before-commit hook: hook bug/) });
    expect(engine.knowledge.relations).toEqual({});
    fail = false;
    await engine.submit(ev('publish'));
    // The hook's removal is part of the same commit as the handler's write.
    expect(engine.knowledge.relations).toEqual({});
    expect(engine.history().at(-1)!.relationsChanged).toEqual([]);
    const before = calls;
    await expect(engine.submit(ev('bad'), { failFast: true })).rejects.toMatchObject({ code: 'ENGINE_ERR_RUN_FAILED' });
    expect(calls).toBe(before);
    off();
    await engine.submit(ev('publish'));
    expect(calls).toBe(before);
    expect(engine.knowledge.relations).toEqual({ ep: { v: 1 } });
  });
});
