import { describe, expect, it } from 'vitest';
import { all, any, event, fact, factEquals, none, not, relationEvent, relationFact, type HandlerSpec } from '../src/index';
import { runScenario, type InMemoryRelationState } from '../src/testing';

const go = { kind: 'internal', name: 'go' } as const;
const order = (out: { report: { steps: readonly { handler: string }[] } }) => out.report.steps.map((s) => s.handler);

describe('queueing', () => {
  it('queues handlers whose event is active and whose facts hold, in declaration order', async () => {
    const handlers: HandlerSpec[] = [
      { name: 'b', when: [event('go'), fact('ready')], run: () => {} },
      { name: 'a', when: event('go'), run: () => {} },
      { name: 'not-ready', when: [event('go'), fact('missing')], run: () => {} },
      { name: 'other-event', when: event('stop'), run: () => {} },
    ];
    const out = await runScenario({ handlers, facts: { ready: true }, event: go });
    expect(order(out)).toEqual(['b', 'a']);
    expect(out.report.steps[0]!.because).toEqual(['go', 'ready']);
  });

  it('priority overrides declaration order, ties keep declaration order', async () => {
    const handlers: HandlerSpec[] = [
      { name: 'low', when: event('go'), run: () => {} },
      { name: 'high', when: event('go'), priority: 10, run: () => {} },
      { name: 'mid1', when: event('go'), priority: 5, run: () => {} },
      { name: 'mid2', when: event('go'), priority: 5, run: () => {} },
    ];
    expect(order(await runScenario({ handlers, event: go }))).toEqual(['high', 'mid1', 'mid2', 'low']);
  });

  it('the triggering event is inactive once queueing is done: a handler made eligible later does not see it', async () => {
    const handlers: HandlerSpec[] = [
      { name: 'enable', when: event('go'), run: (ctx) => ctx.set('enabled') },
      // Its facts only become true after queueing; the event is gone by then.
      { name: 'late', when: [event('go'), fact('enabled')], run: () => {} },
    ];
    const out = await runScenario({ handlers, event: go });
    expect(order(out)).toEqual(['enable']);
  });

  it('drops a queued handler whose fact precondition became false, but does not retest its event', async () => {
    const handlers: HandlerSpec[] = [
      { name: 'first', when: event('go'), run: (ctx) => ctx.clear('ok') },
      { name: 'second', when: [event('go'), fact('ok')], run: () => {} },
      { name: 'third', when: [event('go'), fact('other')], run: () => {} },
    ];
    const out = await runScenario({ handlers, facts: { ok: true, other: true }, event: go });
    expect(order(out)).toEqual(['first', 'third']);
    expect(out.report.steps[0]!.notes.join()).toContain('second');
  });

  it('adds fact-only handlers that became due after a handler ran', async () => {
    const handlers: HandlerSpec[] = [
      { name: 'configure', when: all(fact('installed'), fact('port')), run: (ctx) => ctx.set('configured', ctx.get('port')!) },
      { name: 'on-go', when: event('go'), run: (ctx) => ctx.set('port', 8020) },
    ];
    const out = await runScenario({ handlers, facts: { installed: true }, event: go });
    expect(order(out)).toEqual(['on-go', 'configure']);
    expect(out.facts['configured']).toBe(8020);
    expect(out.report.steps[1]!.queuedBy).toBe('facts');
  });

  it('a fact-only handler does not run again until a fact it reads changes', async () => {
    let runs = 0;
    const handlers: HandlerSpec[] = [
      { name: 'render', when: fact('port'), run: () => void runs++ },
      { name: 'touch-unrelated', when: event('go'), run: (ctx) => ctx.set('unrelated', Math.random()) },
      { name: 'set-port', when: event('port'), run: (ctx) => ctx.set('port', (ctx.event!.payload as number)) },
    ];
    let out = await runScenario({ handlers, facts: { port: 1 } });
    expect(runs).toBe(1);
    for (let i = 0; i < 3; i++) {
      out = await runScenario({ handlers, kb: out.kb, event: go });
      expect(order(out)).toEqual(['touch-unrelated']);
    }
    out = await runScenario({ handlers, kb: out.kb, event: { kind: 'internal', name: 'port', payload: 1 } });
    expect(order(out)).toEqual(['set-port']); // same value: not a change
    out = await runScenario({ handlers, kb: out.kb, event: { kind: 'internal', name: 'port', payload: 2 } });
    expect(order(out)).toEqual(['set-port', 'render']);
    expect(runs).toBe(2);
  });

  it('writing a fact it reads does not re-queue a handler by itself', async () => {
    const out = await runScenario({
      handlers: [{ name: 'count', when: fact('n'), run: (ctx) => ctx.set('n', (ctx.get<number>('n') ?? 0) + 1) }],
      facts: { n: 1 },
    });
    expect(order(out)).toEqual(['count']);
    expect(out.facts['n']).toBe(2);
  });

  it('an event raised by a handler is active at that instant only', async () => {
    const handlers: HandlerSpec[] = [
      { name: 'raiser', when: event('go'), run: (ctx) => { ctx.raise('custom', { n: 1 }); ctx.set('after-raise'); } },
      { name: 'listener', when: event('custom'), run: (ctx) => ctx.set('heard', ctx.event!.payload!) },
      // Eligible only after the raise instant: must not run.
      { name: 'late-listener', when: [event('custom'), fact('after-raise')], run: () => {} },
    ];
    const out = await runScenario({ handlers, event: go });
    expect(order(out)).toEqual(['raiser', 'listener']);
    expect(out.facts['heard']).toEqual({ n: 1 });
    expect(out.report.steps[0]!.raised).toEqual(['custom']);
  });

  it('atStartup handlers run on start only; a handler without preconditions is refused', async () => {
    let started = 0;
    const handlers: HandlerSpec[] = [{ name: 'boot', atStartup: true, run: () => void started++ }];
    const out = await runScenario({ handlers });
    await runScenario({ handlers, kb: out.kb, event: go });
    expect(started).toBe(1);
    await expect(runScenario({ handlers: [{ name: 'orphan', run: () => {} }] })).rejects.toThrow(/no preconditions.*atStartup/);
  });

  it('refuses preconditions that can never hold', async () => {
    await expect(runScenario({ handlers: [{ name: 'two', when: [event('a'), event('b')], run: () => {} }] })).rejects.toThrow(/2 events/);
    await expect(runScenario({ handlers: [{ name: 'neg', when: not(event('a')), run: () => {} }] })).rejects.toThrow(/top level/);
    await expect(runScenario({ handlers: [{ name: 'dup', when: 'x', run: () => {} }, { name: 'dup', when: 'y', run: () => {} }] })).rejects.toThrow(/unique/);
  });
});

describe('fact expressions', () => {
  const cases: Array<[string, Parameters<typeof runScenario>[0]['handlers'][number]['when'], Record<string, unknown>, boolean]> = [
    ['flag set', 'a', { a: true }, true],
    ['flag false', 'a', { a: false }, false],
    ['not', not('a'), {}, true],
    ['any', any('a', 'b'), { b: 1 }, true],
    ['none', none('a', 'b'), { c: 1 }, true],
    ['none fails', none('a', 'b'), { a: 1 }, false],
    ['value test', fact('port', (v) => (v as number) > 1024), { port: 8020 }, true],
    ['value test fails', fact('port', (v) => (v as number) > 1024), { port: 80 }, false],
    ['equals', factEquals('mode', 'ha'), { mode: 'ha' }, true],
  ];
  it.each(cases)('%s', async (_name, when, facts, expected) => {
    const out = await runScenario({ handlers: [{ name: 'h', when: when!, run: () => {} }], facts: facts as never });
    expect(order(out)).toEqual(expected ? ['h'] : []);
  });
});

describe('relation preconditions', () => {
  const rel = (units: InMemoryRelationState['units']): InMemoryRelationState => ({ units, required: ['port'] });

  it('relation facts read relation state and are retested when it changes', async () => {
    const handlers: HandlerSpec[] = [
      { name: 'configure', when: [fact('installed'), relationFact('namenode', 'available')], run: (ctx) => ctx.set('port', ctx.relationFact('namenode', 'value', 'port')!) },
      { name: 'waiting', when: [fact('installed'), not(relationFact('namenode', 'joined'))], run: (ctx) => ctx.setStatus('blocked', 'waiting for namenode') },
    ];
    let out = await runScenario({ handlers, facts: { installed: true } });
    expect(order(out)).toEqual(['waiting']);
    out = await runScenario({
      handlers,
      kb: out.kb,
      event: { kind: 'relation', endpoint: 'namenode', name: 'changed', unit: 'nn/0', keys: ['port'] },
      apply: (tx) => tx.updateRelationState('namenode', () => rel({ 'nn/0': { port: 8020 } }) as never),
    });
    expect(order(out)).toEqual(['configure']);
    expect(out.facts['port']).toBe(8020);
    expect(out.report.relationsChanged).toEqual(['namenode']);
  });

  it('relation events queue only their handlers and never stick', async () => {
    const seen: string[] = [];
    const handlers: HandlerSpec[] = [
      { name: 'on-joined', when: relationEvent('db', 'joined'), run: (ctx) => void seen.push(`joined:${(ctx.event as { unit?: string }).unit}`) },
      { name: 'on-changed', when: relationEvent('db', 'changed'), run: () => void seen.push('changed') },
      { name: 'other-endpoint', when: relationEvent('cache', 'joined'), run: () => void seen.push('cache') },
    ];
    let out = await runScenario({ handlers, event: { kind: 'relation', endpoint: 'db', name: 'joined', unit: 'db/0' } });
    out = await runScenario({ handlers, kb: out.kb, event: go });
    expect(seen).toEqual(['joined:db/0']);
  });
});

describe('transactions', () => {
  it('a failing handler rolls back every change and message, and compensates completed handlers in reverse', async () => {
    const undone: string[] = [];
    const handlers: HandlerSpec[] = [
      { name: 'step1', when: event('go'), run: (ctx) => { ctx.set('a', 1); ctx.updateRelationState('peer', () => ({ units: {} })); }, compensate: (c) => void undone.push(`${c.handler}<-${c.failure.handler}`) },
      { name: 'step2', when: event('go'), run: (ctx) => ctx.set('b', 2), compensate: (c) => void undone.push(c.handler) },
      { name: 'no-undo', when: event('go'), run: () => {} },
      { name: 'boom', when: event('go'), run: () => { throw new Error('disk full'); } },
      { name: 'never', when: event('go'), run: () => { throw new Error('must not run'); } },
    ];
    const out = await runScenario({ handlers, facts: { keep: true }, event: go });
    expect(out.committed).toBe(false);
    expect(out.facts).toEqual({ keep: true });
    expect(out.kb.relations).toEqual({});
    expect(undone).toEqual(['step2', 'step1<-boom']);
    expect(out.report.error).toMatchObject({ code: 'ENGINE_ERR_HANDLER_FAILED', handler: 'boom' });
    expect(out.report.error!.message).toContain('disk full');
    expect(out.report.steps.map((s) => s.outcome)).toEqual(['ok', 'ok', 'ok', 'failed']);
    expect(out.report.compensated.map((c) => c.handler)).toEqual(['step2', 'step1']);
  });

  it('a failing compensation is reported and the others still run', async () => {
    const undone: string[] = [];
    const out = await runScenario({
      handlers: [
        { name: 'a', when: event('go'), run: () => {}, compensate: () => void undone.push('a') },
        { name: 'b', when: event('go'), run: () => {}, compensate: () => { throw new Error('cannot undo'); } },
        { name: 'c', when: event('go'), run: () => { throw new Error('x'); } },
      ],
      event: go,
    });
    expect(undone).toEqual(['a']);
    expect(out.report.compensated).toMatchObject([{ handler: 'b', outcome: 'failed', error: 'cannot undo' }, { handler: 'a', outcome: 'ok' }]);
  });

  it('an async handler that rejects rolls back like a throwing one', async () => {
    const out = await runScenario({
      handlers: [{ name: 'async', when: event('go'), run: async (ctx) => { ctx.set('a'); await new Promise((r) => setTimeout(r, 1)); throw new Error('late'); } }],
      event: go,
    });
    expect(out.committed).toBe(false);
    expect(out.facts).toEqual({});
  });

  it('a context used after its handler returned is refused', async () => {
    let leaked: { set(k: string): void } | undefined;
    await runScenario({ handlers: [{ name: 'leak', when: event('go'), run: (ctx) => void (leaked = ctx) }], event: go });
    expect(() => leaked!.set('late')).toThrow(/after it returned/);
  });

  it('a run that does not converge stops, rolls back and names the cycle', async () => {
    const out = await runScenario({
      handlers: [
        { name: 'ping', when: fact('b'), run: (ctx) => ctx.set('a', (ctx.get<number>('a') ?? 0) + 1) },
        { name: 'pong', when: fact('a'), run: (ctx) => ctx.set('b', (ctx.get<number>('b') ?? 0) + 1) },
        { name: 'bystander', when: event('go'), run: (ctx) => ctx.set('a', 1) },
      ],
      event: go,
      maxHandlerExecutions: 50,
    });
    expect(out.committed).toBe(false);
    expect(out.report.outcome).toBe('nonconvergent');
    expect(out.report.error!.code).toBe('ENGINE_ERR_NONCONVERGENT');
    expect(out.report.error!.message).toMatch(/ping/);
    expect(out.report.error!.message).toMatch(/pong/);
    expect(out.report.error!.message).not.toMatch(/bystander/);
    expect(out.facts).toEqual({});
  });

  it('commits facts and relation state together', async () => {
    const out = await runScenario({
      handlers: [{ name: 'h', when: event('go'), run: (ctx) => { ctx.set('x', 1); ctx.clear('gone'); ctx.updateRelationState('db', () => ({ units: { 'db/0': { port: 5432 } } })); } }],
      facts: { gone: true },
      event: go,
    });
    expect(out.committed).toBe(true);
    expect(out.facts).toEqual({ x: 1 });
    expect(out.kb.relations).toEqual({ db: { units: { 'db/0': { port: 5432 } } } });
    expect(out.report.relationsChanged).toEqual(['db']);
    expect(out.report.factsChanged).toEqual(['gone', 'x']);
  });
});
