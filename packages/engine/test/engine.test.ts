import { VirtualClock } from '@rhizome/clock';
import { applyPatches } from 'immer';
import { describe, expect, it } from 'vitest';
import { Engine, EngineError, event, fact, factsOf, type HandlerSpec, type RunCommit } from '../src/index';

const ev = (name: string, payload?: unknown) => ({ kind: 'internal' as const, name, ...(payload !== undefined ? { payload: payload as never } : {}) });

async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
  await new Promise((r) => setImmediate(r));
}

describe('Engine inbox', () => {
  it('processes events one run at a time in arrival order; events arriving during a run wait', async () => {
    const log: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const engine = new Engine({
      handlers: [
        { name: 'slow', when: event('slow'), run: async () => { log.push('slow:start'); await gate; log.push('slow:end'); } },
        { name: 'fast', when: event('fast'), run: (ctx) => void log.push(`fast:${String(ctx.event!.payload)}`) },
      ],
    });
    const done = [engine.submit(ev('slow')), engine.submit(ev('fast', 1)), engine.submit(ev('fast', 2))];
    await flush();
    expect(log).toEqual(['slow:start']);
    expect(engine.status()).toMatchObject({ state: 'running', queued: 3 });
    release();
    const reports = await Promise.all(done);
    expect(log).toEqual(['slow:start', 'slow:end', 'fast:1', 'fast:2']);
    expect(reports.map((r) => r.runId)).toEqual(['run-1', 'run-2', 'run-3']);
    expect(engine.status().state).toBe('idle');
  });

  it('rejects malformed events at submit', () => {
    const engine = new Engine({ handlers: [] });
    expect(() => engine.submit({ kind: 'weird', name: 'x' } as never)).toThrow(EngineError);
    expect(() => engine.submit({ kind: 'internal', name: '' })).toThrow(/non-empty/);
    expect(() => engine.submit({ kind: 'relation', name: 'exploded', endpoint: 'db' } as never)).toThrow(/unknown relation event/);
  });
});

describe('retries, error state, resolve and skip', () => {
  function flaky(failures: { n: number }): HandlerSpec[] {
    return [
      { name: 'write', when: event('go'), run: (ctx) => ctx.set('written') },
      { name: 'flaky', when: event('go'), run: () => { if (failures.n-- > 0) throw new Error('service not ready'); } },
    ];
  }

  it('retries a failed run after exponential backoff with jitter on the injected clock', async () => {
    const clock = new VirtualClock();
    const failures = { n: 2 };
    const engine = new Engine({ handlers: flaky(failures), clock, random: () => 0.5, retry: { limit: 5, baseMs: 100, maxMs: 10_000, jitter: 0.2 } });
    const done = engine.submit(ev('go'));
    await flush();
    expect(engine.status()).toMatchObject({ state: 'retrying', error: { handler: 'flaky', attempts: 1 } });
    expect(factsOf(engine.knowledge)).toEqual({});
    clock.advanceSync(99);
    await flush();
    expect(engine.status().state).toBe('retrying');
    clock.advanceSync(1); // 100ms: base delay (jitter centred by random()=0.5)
    await flush();
    expect(engine.status()).toMatchObject({ state: 'retrying', error: { attempts: 2 } });
    clock.advanceSync(200); // doubled
    const report = await done;
    expect(report.attempt).toBe(3);
    expect(factsOf(engine.knowledge)).toEqual({ written: true });
    expect(engine.status().state).toBe('idle');
    expect(engine.history().map((r) => r.outcome)).toEqual(['failed', 'failed', 'committed']);
  });

  it('stops in error after the retry limit, holds later events, and resolve() retries now', async () => {
    const clock = new VirtualClock();
    const failures = { n: 3 };
    const engine = new Engine({ handlers: flaky(failures), clock, random: () => 0, retry: { limit: 3, baseMs: 10, maxMs: 1000, jitter: 0 } });
    const first = engine.submit(ev('go'));
    const second = engine.submit(ev('go'));
    for (let i = 0; i < 5; i++) {
      await flush();
      clock.advanceSync(1000);
    }
    await flush();
    const status = engine.status();
    expect(status.state).toBe('error');
    expect(status.error).toMatchObject({ handler: 'flaky', event: 'go', attempts: 3 });
    expect(status.error!.message).toContain('service not ready');
    expect(status.queued).toBe(2);
    expect(clock.pending).toBe(0); // waits for the operator, no timer spinning
    engine.resolve(); // the fault is fixed (failures.n is now 0)
    await Promise.all([first, second]);
    expect(engine.status()).toMatchObject({ state: 'idle', queued: 0 });
  });

  it('skip() drops the failing event, rejects its submitter and goes on with the next', async () => {
    const engine = new Engine({
      handlers: [
        { name: 'bad', when: event('bad'), run: () => { throw new Error('always'); } },
        { name: 'good', when: event('good'), run: (ctx) => ctx.set('good') },
      ],
      retry: { limit: 1 },
    });
    const bad = engine.submit(ev('bad'));
    const good = engine.submit(ev('good'));
    await flush();
    expect(engine.status().state).toBe('error');
    engine.skip();
    await expect(bad).rejects.toMatchObject({ code: 'ENGINE_ERR_SKIPPED' });
    await good;
    expect(factsOf(engine.knowledge)).toEqual({ good: true });
    expect(() => engine.skip()).toThrow(/nothing to skip/);
  });

  it('a non-convergent run goes straight to error (retrying would repeat the cycle)', async () => {
    const engine = new Engine({
      handlers: [
        { name: 'ping', when: fact('b'), run: (ctx) => ctx.set('a', (ctx.get<number>('a') ?? 0) + 1) },
        { name: 'pong', when: fact('a'), run: (ctx) => ctx.set('b', (ctx.get<number>('b') ?? 0) + 1) },
        { name: 'kick', when: event('go'), run: (ctx) => ctx.set('a', 0) },
      ],
      maxHandlerExecutions: 20,
    });
    void engine.submit(ev('go')).catch(() => {});
    await flush();
    expect(engine.status()).toMatchObject({ state: 'error', error: { code: 'ENGINE_ERR_NONCONVERGENT', attempts: 1 } });
  });
});

describe('commit hook (durability)', () => {
  it('is awaited before the submitter hears of the commit, and carries patches that replay the change', async () => {
    const commits: RunCommit[] = [];
    let persisted = false;
    const engine = new Engine({
      handlers: [{ name: 'h', when: event('go'), run: (ctx) => { ctx.set('x', { deep: [1] }); } }],
      onCommit: async (c) => {
        await new Promise((r) => setTimeout(r, 5));
        persisted = true;
        commits.push(c);
      },
    });
    const before = engine.knowledge;
    await engine.submit(ev('go'));
    expect(persisted).toBe(true);
    const c = commits[0]!;
    expect(applyPatches(before as never, c.patches as never)).toEqual(engine.knowledge);
    expect(applyPatches(engine.knowledge as never, c.inversePatches as never)).toEqual(before);
  });

  it('a commit that cannot be persisted does not take effect and puts the engine in error', async () => {
    let fail = true;
    const engine = new Engine({
      handlers: [{ name: 'h', when: event('go'), run: (ctx) => ctx.set('x') }],
      onCommit: () => { if (fail) throw new Error('EIO'); },
    });
    const done = engine.submit(ev('go'));
    await flush();
    expect(factsOf(engine.knowledge)).toEqual({});
    expect(engine.status()).toMatchObject({ state: 'error' });
    expect(engine.status().error!.message).toContain('EIO');
    fail = false;
    engine.resolve();
    await done;
    expect(factsOf(engine.knowledge)).toEqual({ x: true });
  });

  it('stop() lets the current run finish and rejects the rest', async () => {
    // A gate, not a timer: on a loaded machine a 5 ms handler could finish before stop().
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const engine = new Engine({ handlers: [{ name: 'h', when: event('go'), run: async (ctx) => { await gate; ctx.set('x'); } }] });
    const a = engine.submit(ev('go'));
    const b = engine.submit(ev('go'));
    await flush();
    const stopped = engine.stop();
    release();
    await stopped;
    await expect(a).resolves.toMatchObject({ outcome: 'committed' });
    await expect(b).rejects.toMatchObject({ code: 'ENGINE_ERR_STOPPED' });
    await expect(engine.submit(ev('go'))).rejects.toMatchObject({ code: 'ENGINE_ERR_STOPPED' });
  });
});

describe('start', () => {
  it('runs startup handlers and every due fact-only handler of a recovered knowledge base', async () => {
    const ran: string[] = [];
    const handlers: HandlerSpec[] = [
      { name: 'boot', atStartup: true, run: (ctx) => { ran.push('boot'); ctx.set('booted'); } },
      { name: 'configure', when: fact('booted'), run: () => void ran.push('configure') },
    ];
    const first = new Engine({ handlers });
    await first.start();
    expect(ran).toEqual(['boot', 'configure']);
    // Restart from the committed state: configure already saw `booted`.
    ran.length = 0;
    const second = new Engine({ handlers, initial: first.knowledge });
    await second.start();
    expect(ran).toEqual(['boot']);
  });
});
