/**
 * Issue 13 item 7: declared facts (typed keys and values) and, for charms
 * without declarations, a warning for preconditions on facts nothing sets.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Engine, EngineError, defineFacts, event, fact, getFact, type HandlerSpec } from '../src/index';
import { runScenario } from '../src/testing';

const ev = (name: string) => ({ kind: 'internal' as const, name });

const f = defineFacts({
  'kafka.installed': z.boolean(),
  'kafka.port': z.number().int().min(1).max(65535),
  'kafka.brokers': z.array(z.string()),
});

describe('declared facts', () => {
  it('types keys and values in preconditions and in the context (compile-time checks)', async () => {
    const handlers: HandlerSpec[] = [
      f.handler({
        name: 'install',
        when: [event('go'), f.not(f.fact('kafka.installed'))],
        run: (ctx) => {
          ctx.set('kafka.installed', true);
          ctx.set('kafka.port', 9092);
          const port: number | undefined = ctx.get('kafka.port');
          ctx.set('kafka.brokers', [`b:${port ?? 0}`]);
          // @ts-expect-error a misspelled key is a TypeScript error
          ctx.set('kafka.instaled', true);
        },
      }),
    ];
    // @ts-expect-error a misspelled key in a precondition is a TypeScript error
    expect(() => f.fact('kafka.instaled')).not.toThrow(); // (valid at run time as a key: the engine refuses it below)
    // @ts-expect-error a value of the wrong type is a TypeScript error
    f.handler({ name: 'x', when: f.fact('kafka.port'), run: (ctx) => ctx.set('kafka.port', '9092') });
    // @ts-expect-error so is a misspelled get
    f.handler({ name: 'y', when: f.fact('kafka.port'), run: (ctx) => void ctx.get('kafka.prot') });
    const out = await runScenario({ handlers, factSchemas: f.schemas, event: ev('go') });
    // The misspelled set reached run time here (ts-expect-error): refused, the run rolled back.
    expect(out.committed).toBe(false);
    expect(out.error!.message).toMatch(/fact "kafka.instaled" is not declared in the charm's facts \(declared: kafka.installed, kafka.port, kafka.brokers\)/);
  });

  it('checks values at run time: a value the schema refuses fails the handler and changes nothing', async () => {
    const engine = new Engine({
      facts: f.schemas,
      handlers: [{ name: 'bad-port', when: event('go'), run: (ctx) => { ctx.set('kafka.installed', true); ctx.set('kafka.port', 70000); } }],
      retry: { limit: 1 },
    });
    void engine.submit(ev('go')).catch(() => {});
    await engine.whenIdle();
    expect(engine.status().error).toMatchObject({ code: 'ENGINE_ERR_HANDLER_FAILED', handler: 'bad-port' });
    expect(engine.status().error!.message).toMatch(/value 70000 for fact "kafka.port" does not match its declaration: .*65535/);
    expect(engine.knowledge.clock).toBe(0);
  });

  it("takes the agent's own facts in a charm that declares its facts: the config and the operator's overrides", async () => {
    const engine = new Engine({ facts: f.schemas, handlers: [{ name: 'status', when: event('config.changed'), run: (ctx) => ctx.setStatus('active', 'configured') }], retry: { limit: 1 } });
    void engine.submit(ev('config.changed'), { apply: (tx) => { tx.set('config', { text: 'Hi' }); tx.set('config.overrides', { text: 'Hi' }); } }).catch(() => {});
    await engine.whenIdle();
    expect(engine.status().error).toBeUndefined();
    expect(getFact(engine.knowledge, 'config.overrides')).toEqual({ text: 'Hi' });
  });

  it('refuses a precondition on an undeclared fact when the engine is built; built-in facts need no declaration', async () => {
    expect(() => new Engine({ facts: f.schemas, handlers: [{ name: 'typo', when: fact('kafka.instaled'), run: () => {} }] })).toThrow(/handler "typo" waits on fact "kafka.instaled", which is not declared/);
    expect(() => new Engine({ facts: { 'a.b': { nope: true } } as never, handlers: [] })).toThrow(/not a Standard Schema/);
    const out = await runScenario({
      factSchemas: f.schemas,
      handlers: [{ name: 'status', when: [event('go'), fact('config')], run: (ctx) => ctx.setStatus('active', 'ok') }],
      facts: { config: { port: 1 } },
      event: ev('go'),
    });
    expect(out.committed).toBe(true);
  });
});

describe('undeclared facts: preconditions on facts nothing sets', () => {
  it('lists them once start-up settled, and forgets a fact once a run sets it', async () => {
    const handlers: HandlerSpec[] = [
      { name: 'install', atStartup: true, run: (ctx) => ctx.set('kafka.installed') },
      { name: 'configure', when: fact('kafka.instaled'), run: () => {} }, // misspelled
      { name: 'serve', when: fact('kafka.configured'), run: () => {} },
      { name: 'configure-real', when: [event('configure'), fact('kafka.installed')], run: (ctx) => ctx.set('kafka.configured') },
    ];
    const engine = new Engine({ handlers });
    expect(engine.startupSettled).toBe(false);
    await engine.start();
    await engine.whenIdle();
    expect(engine.startupSettled).toBe(true);
    expect(engine.neverSetFacts()).toEqual([
      { handler: 'configure', fact: 'kafka.instaled' },
      { handler: 'serve', fact: 'kafka.configured' },
    ]);
    await engine.submit(ev('configure'));
    expect(engine.neverSetFacts()).toEqual([{ handler: 'configure', fact: 'kafka.instaled' }]);
    // With declarations there is nothing to warn about: misspellings are refused.
    expect(new Engine({ handlers: [], facts: f.schemas }).neverSetFacts()).toEqual([]);
    expect(EngineError).toBeDefined();
  });
});
