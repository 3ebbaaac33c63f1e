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
