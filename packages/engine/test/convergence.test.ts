/**
 * Issue 13 item 5: non-convergence is a cycle (a handler executing again on
 * values it already saw), not a large run; every submit settles.
 */
import { describe, expect, it } from 'vitest';
import { Engine, event, fact, type HandlerSpec } from '../src/index';
import { runScenario } from '../src/testing';

const ev = (name: string) => ({ kind: 'internal' as const, name });

async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
  await new Promise((r) => setImmediate(r));
}

describe('non-convergence is a cycle, not a large run', () => {
  it('a run executing 2,500 different handlers commits', async () => {
    const handlers: HandlerSpec[] = [];
    for (let i = 0; i < 2500; i++) handlers.push({ name: `step${i}`, when: event('go'), run: (ctx) => ctx.set(`done.${i}`) });
    const engine = new Engine({ handlers });
    const report = await engine.submit(ev('go'));
    expect(report.outcome).toBe('committed');
    expect(report.steps).toHaveLength(2500);
    expect(engine.status().state).toBe('idle');
  });

  it('a chain of 1,500 fact-only handlers, each due on the previous one’s fact, commits', async () => {
    const handlers: HandlerSpec[] = [{ name: 'kick', when: event('go'), run: (ctx) => ctx.set('link.0') }];
    for (let i = 0; i < 1500; i++) handlers.push({ name: `link${i}`, when: fact(`link.${i}`), run: (ctx) => ctx.set(`link.${i + 1}`) });
    const out = await runScenario({ handlers, event: ev('go') });
    expect(out.committed).toBe(true);
    expect(out.facts['link.1500']).toBe(true);
  });

  it('a handler executing again on values it already saw is a cycle, caught at once (not after the bound)', async () => {
    // flip and flop toggle `x` between true and false: each sees a value it saw before on its second execution.
    const handlers: HandlerSpec[] = [
      { name: 'kick', when: event('go'), run: (ctx) => ctx.set('x', true) },
      { name: 'flip', when: fact('x'), run: (ctx) => ctx.set('x', false) },
      { name: 'flop', when: fact('x', (v) => v === false, 'x is false'), run: (ctx) => ctx.set('x', true) },
    ];
    const out = await runScenario({ handlers, event: ev('go'), maxHandlerExecutions: 1_000_000 });
    expect(out.committed).toBe(false);
    expect(out.report.outcome).toBe('nonconvergent');
    expect(out.report.error!.code).toBe('ENGINE_ERR_NONCONVERGENT');
    expect(out.report.error!.message).toMatch(/already seen/);
    expect(out.report.error!.message).toMatch(/flip|flop/);
    expect(out.report.steps.length).toBeLessThan(10);
  });

  it('a handler raising the event that queues it again is a cycle', async () => {
    const out = await runScenario({
      handlers: [{ name: 'echo', when: event('ping'), run: (ctx) => ctx.raise('ping') }],
      event: ev('ping'),
      maxHandlerExecutions: 1_000_000,
    });
    expect(out.report.outcome).toBe('nonconvergent');
    expect(out.report.steps.length).toBeLessThan(5);
  });

  it('a handler that keeps seeing new values stops at the per-handler bound', async () => {
    const out = await runScenario({
      handlers: [
        { name: 'kick', when: event('go'), run: (ctx) => ctx.set('n', 0) },
        { name: 'count', when: fact('n', (v) => typeof v === 'number'), run: (ctx) => ctx.set('m', (ctx.get<number>('n') ?? 0) + 1) },
        { name: 'carry', when: fact('m'), run: (ctx) => ctx.set('n', ctx.get<number>('m') ?? 0) },
      ],
      event: ev('go'),
      maxHandlerExecutions: 30,
    });
    expect(out.report.outcome).toBe('nonconvergent');
    expect(out.report.error!.message).toMatch(/"count" was about to execute a 31st time/);
    expect(out.report.steps.filter((s) => s.handler === 'count')).toHaveLength(30);
  });
});

describe('every submit settles', () => {
  it('a precondition test that throws fails the run (retried, then error) instead of hanging; skip settles the submit', async () => {
    const engine = new Engine({
      handlers: [{ name: 'h', when: [event('go'), fact('x', () => { throw new Error('bad test'); })], run: () => {} }],
      retry: { limit: 2, baseMs: 0, maxMs: 0, jitter: 0 },
      initial: (await runScenario({ handlers: [], facts: { x: 1 } })).kb,
    });
    const done = engine.submit(ev('go'));
    // Bounded wait for the retry (on the system clock, 0 ms backoff) to fail too.
    for (const end = Date.now() + 5_000; engine.status().state !== 'error' && Date.now() < end; ) await new Promise((r) => setTimeout(r, 5));
    expect(engine.status()).toMatchObject({ state: 'error', error: { code: 'ENGINE_ERR_RUN_FAILED', attempts: 2 } });
    expect(engine.status().error!.message).toMatch(/bad test/);
    engine.skip();
    await expect(done).rejects.toMatchObject({ code: 'ENGINE_ERR_SKIPPED' });
    // The engine goes on with later events.
    await engine.submit(ev('other'));
    expect(engine.status().state).toBe('idle');
  });

  it('a non-convergent run puts the engine in error; stop() settles its submitter', async () => {
    const engine = new Engine({
      handlers: [{ name: 'echo', when: event('ping'), run: (ctx) => ctx.raise('ping') }],
    });
    const done = engine.submit(ev('ping'));
    await flush();
    expect(engine.status()).toMatchObject({ state: 'error', error: { code: 'ENGINE_ERR_NONCONVERGENT' } });
    await engine.stop();
    await expect(done).rejects.toMatchObject({ code: 'ENGINE_ERR_STOPPED' });
  });
});
