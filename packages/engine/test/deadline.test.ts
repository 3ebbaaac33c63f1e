import { VirtualClock } from '@rhizome/clock';
/** Issue 13 item 9: a handler deadline (engine default, per-handler override). */
import { describe, expect, it } from 'vitest';
import { Engine, EngineError, event, factsOf, type HandlerSpec } from '../src/index';
import { runScenario } from '../src/testing';

const ev = (name: string) => ({ kind: 'internal' as const, name });

async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
  await new Promise((r) => setImmediate(r));
}

describe('handler deadline', () => {
  it('a handler that never settles is abandoned at its deadline: rolled back, compensated, retried, with its own code', async () => {
    const clock = new VirtualClock();
    const undone: string[] = [];
    let hang = true;
    let signal: AbortSignal | undefined;
    const handlers: HandlerSpec[] = [
      { name: 'prepare', when: event('go'), priority: 1, run: (ctx) => ctx.set('prepared'), compensate: () => void undone.push('prepare') },
      {
        name: 'stuck',
        when: event('go'),
        deadlineMs: 5_000,
        run: async (ctx) => {
          signal = ctx.signal;
          if (hang) await new Promise(() => {});
          ctx.set('finished');
        },
      },
      { name: 'other', when: event('other'), run: (ctx) => ctx.set('other') },
    ];
    const engine = new Engine({ handlers, clock, handlerDeadlineMs: 60_000, random: () => 0.5, retry: { limit: 3, baseMs: 100, maxMs: 100, jitter: 0 } });
    const done = engine.submit(ev('go'));
    const other = engine.submit(ev('other'));
    await flush();
    expect(engine.status().state).toBe('running');
    clock.advanceSync(4_999);
    await flush();
    expect(engine.status().state).toBe('running');
    clock.advanceSync(1);
    await flush();
    expect(engine.status()).toMatchObject({ state: 'retrying', error: { code: 'ENGINE_ERR_HANDLER_TIMEOUT', handler: 'stuck' } });
    expect(engine.status().error!.message).toMatch(/within 5000 ms/);
    expect(signal!.aborted).toBe(true);
    expect(undone).toEqual(['prepare']);
    expect(factsOf(engine.knowledge)).toEqual({}); // rolled back
    hang = false;
    clock.advanceSync(100);
    await done;
    await other; // the inbox moves again
    expect(factsOf(engine.knowledge)).toEqual({ prepared: true, finished: true, other: true });
    expect(engine.status().error).toBeUndefined();
  });

  it('the engine default applies when a handler sets none', async () => {
    const clock = new VirtualClock();
    const engine = new Engine({
      handlers: [{ name: 'slow', when: event('go'), run: () => new Promise<void>(() => {}) }],
      clock,
      handlerDeadlineMs: 1_000,
      retry: { limit: 1 },
    });
    void engine.submit(ev('go')).catch(() => {});
    await flush();
    clock.advanceSync(1_000);
    await flush();
    expect(engine.status()).toMatchObject({ state: 'error', error: { code: 'ENGINE_ERR_HANDLER_TIMEOUT', handler: 'slow' } });
  });

  it('a context used after the deadline is refused, and the late rejection does not escape', async () => {
    const clock = new VirtualClock();
    let late!: () => void;
    const engine = new Engine({
      handlers: [{ name: 'late', when: event('go'), deadlineMs: 10, run: (ctx) => new Promise<void>((resolve, reject) => { late = () => { try { ctx.set('x'); resolve(); } catch (e) { reject(e); } }; }) }],
      clock,
      retry: { limit: 1 },
    });
    void engine.submit(ev('go')).catch(() => {});
    await flush();
    clock.advanceSync(10);
    await flush();
    late();
    await flush();
    expect(factsOf(engine.knowledge)).toEqual({});
    expect(engine.status().error!.code).toBe('ENGINE_ERR_HANDLER_TIMEOUT');
  });

  it('bad deadlines are refused up front', async () => {
    expect(() => new Engine({ handlers: [{ name: 'h', when: event('go'), deadlineMs: 0, run: () => {} }] })).toThrow(EngineError);
    expect(() => new Engine({ handlers: [], handlerDeadlineMs: -1 })).toThrow(/handlerDeadlineMs/);
    // Infinity means no deadline (and no timer).
    const out = await runScenario({ handlers: [{ name: 'h', when: event('go'), deadlineMs: Infinity, run: async (ctx) => ctx.set('ok') }], event: ev('go') });
    expect(out.facts).toEqual({ ok: true });
  });
});
