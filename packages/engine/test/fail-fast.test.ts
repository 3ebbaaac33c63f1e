/** SubmitOptions.failFast: a failed run rolls back and rejects its submitter at once; no retry, no error state. */
import { describe, expect, it } from 'vitest';
import { Engine, EngineError, event, factsOf, internalEvent } from '../src/index';

describe('failFast submissions (operator actions)', () => {
  it('rolls back, rejects once, and leaves the engine idle for the next event', async () => {
    let calls = 0;
    const engine = new Engine({
      handlers: [
        {
          name: 'act',
          when: event('action.fail'),
          run: (ctx) => {
            calls++;
            ctx.set('half.done', true);
            throw new Error('disk full');
          },
        },
        { name: 'ok', when: event('action.ok'), run: (ctx) => ctx.set('done', true) },
      ],
      retry: { limit: 3, baseMs: 1, maxMs: 2 },
    });
    const failed = engine.submit(internalEvent('action.fail'), { failFast: true });
    await expect(failed).rejects.toSatisfy((e: unknown) => e instanceof EngineError && e.code === 'ENGINE_ERR_RUN_FAILED' && /disk full/.test(e.message));
    expect(calls).toBe(1);
    expect(factsOf(engine.knowledge)['half.done']).toBeUndefined();
    expect(engine.status().state).toBe('idle');
    expect(engine.status().error).toBeUndefined();
    await engine.submit(internalEvent('action.ok'));
    expect(factsOf(engine.knowledge)['done']).toBe(true);
    expect(engine.history().map((r) => r.outcome)).toEqual(['failed', 'committed']);
  });
});
