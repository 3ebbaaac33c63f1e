/**
 * Property tests over random charms and event sequences: the engine's
 * guarantees must hold for every handler set, not just the ones we thought of.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { all, any, Engine, event, fact, none, not, type HandlerContext, type HandlerSpec, type Json, type Precondition } from '../src/index';
import { describe as describePrecondition } from '../src/preconditions';
import { runScenario } from '../src/testing';

const KEYS = ['k0', 'k1', 'k2', 'k3'];
const EVENTS = ['e0', 'e1', 'e2'];

type Action =
  | { op: 'set'; key: string; value: number }
  | { op: 'clear'; key: string }
  | { op: 'raise'; name: string }
  | { op: 'throw' };

interface HandlerModel {
  name: string;
  event: string | undefined;
  facts: Precondition | undefined;
  actions: Action[];
  priority: number;
}

const keyArb = fc.constantFrom(...KEYS);
const leafArb: fc.Arbitrary<Precondition> = fc.oneof(
  keyArb.map((k) => fact(k)),
  fc.tuple(keyArb, fc.integer({ min: 0, max: 2 })).map(([k, v]) => fact(k, (x) => x === v, `${k}=${v}`)),
);
const exprArb: fc.Arbitrary<Precondition> = fc.letrec<{ expr: Precondition }>((tie) => ({
  expr: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leafArb,
    tie('expr').map((p) => not(p)),
    fc.array(tie('expr'), { minLength: 1, maxLength: 3 }).map((ps) => all(...ps)),
    fc.array(tie('expr'), { minLength: 1, maxLength: 3 }).map((ps) => any(...ps)),
    fc.array(tie('expr'), { minLength: 1, maxLength: 2 }).map((ps) => none(...ps)),
  ),
})).expr;

const actionArb: fc.Arbitrary<Action> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('set' as const), key: keyArb, value: fc.integer({ min: 0, max: 2 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('clear' as const), key: keyArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('raise' as const), name: fc.constantFrom(...EVENTS) }) },
  { weight: 1, arbitrary: fc.constant({ op: 'throw' as const }) },
);

const handlerArb = fc
  .record({
    event: fc.option(fc.constantFrom(...EVENTS), { nil: undefined }),
    facts: fc.option(exprArb, { nil: undefined }),
    actions: fc.array(actionArb, { maxLength: 4 }),
    priority: fc.integer({ min: 0, max: 2 }),
  })
  .filter((h) => h.event !== undefined || h.facts !== undefined);

const charmArb = fc.array(handlerArb, { minLength: 1, maxLength: 8 }).map((hs) => hs.map((h, i): HandlerModel => ({ ...h, name: `h${i}` })));
const factsArb = fc.dictionary(keyArb, fc.integer({ min: 0, max: 2 }), { maxKeys: 4 });

interface Trace {
  violations: string[];
  executions: Array<{ handler: string; activation: number | undefined }>;
  activations: Map<number, string>;
}

/** Builds real handlers from the models, instrumented to check the engine's promises as they run. */
function build(models: HandlerModel[], trace: Trace): HandlerSpec[] {
  const activationOf = new WeakMap<object, number>();
  let nextActivation = 0;
  const activation = (e: object | undefined): number | undefined => {
    if (!e) return undefined;
    if (!activationOf.has(e)) {
      const id = nextActivation++;
      activationOf.set(e, id);
      trace.activations.set(id, (e as { name: string }).name);
    }
    return activationOf.get(e);
  };
  return models.map((m) => ({
    name: m.name,
    priority: m.priority,
    when: [...(m.event ? [event(m.event)] : []), ...(m.facts ? [m.facts] : [])],
    run: (ctx: HandlerContext) => {
      if (m.facts && !evaluate(m.facts, ctx)) trace.violations.push(`${m.name} ran while ${describePrecondition(m.facts)} was false`);
      trace.executions.push({ handler: m.name, activation: activation(ctx.event) });
      for (const a of m.actions) {
        if (a.op === 'set') ctx.set(a.key, a.value);
        else if (a.op === 'clear') ctx.clear(a.key);
        else if (a.op === 'raise') ctx.raise(a.name);
        else throw new Error(`${m.name} fails`);
      }
    },
  }));
}

/** An independent evaluator of the test's own precondition shapes, reading through the context. */
function evaluate(p: Precondition, ctx: HandlerContext): boolean {
  switch (p.kind) {
    case 'fact': {
      const v = ctx.get(p.key);
      return v !== undefined && (p.test ? p.test(v) : v !== false);
    }
    case 'not':
      return !evaluate(p.of, ctx);
    case 'all':
      return p.of.every((q) => evaluate(q, ctx));
    case 'any':
      return p.of.some((q) => evaluate(q, ctx));
    case 'none':
      return !p.of.some((q) => evaluate(q, ctx));
    default:
      throw new Error(`unexpected ${p.kind}`);
  }
}

/** What the committed facts must be: the executed handlers' writes, replayed in report order. */
function replay(initial: Record<string, Json>, models: HandlerModel[], executed: string[]): Record<string, Json> {
  const facts = { ...initial };
  const byName = new Map(models.map((m) => [m.name, m]));
  for (const name of executed) {
    for (const a of byName.get(name)!.actions) {
      if (a.op === 'set') facts[a.key] = a.value;
      else if (a.op === 'clear') delete facts[a.key];
    }
  }
  return facts;
}

describe('engine properties', () => {
  it('a run commits all or nothing, never runs a handler whose facts are false, runs an event handler at most once per activation, and terminates', async () => {
    await fc.assert(
      fc.asyncProperty(charmArb, factsArb, fc.constantFrom(...EVENTS), async (models, initial, trigger) => {
        const trace: Trace = { violations: [], executions: [], activations: new Map() };
        const out = await runScenario({ handlers: build(models, trace), facts: initial, event: { kind: 'internal', name: trigger }, maxHandlerExecutions: 200 });

        expect(trace.violations).toEqual([]);
        const executed = out.report.steps.map((s) => s.handler);
        if (out.committed) {
          expect(out.facts).toEqual(replay(initial, models, executed));
        } else {
          expect(out.facts).toEqual(initial);
          expect(['failed', 'nonconvergent']).toContain(out.report.outcome);
        }
        // Event handlers: at most once per activation of their event.
        const perActivation = new Map<string, number>();
        for (const e of trace.executions) {
          if (e.activation === undefined) continue;
          const k = `${e.handler}@${e.activation}`;
          perActivation.set(k, (perActivation.get(k) ?? 0) + 1);
        }
        for (const [k, n] of perActivation) expect(n, k).toBe(1);
        // The bound is per handler: no handler executes more than 200 times.
        const perHandler = new Map<string, number>();
        for (const s of out.report.steps) perHandler.set(s.handler, (perHandler.get(s.handler) ?? 0) + 1);
        for (const [h, n] of perHandler) expect(n, h).toBeLessThanOrEqual(200);
      }),
      { numRuns: 300 },
    );
  });

  it('after a failure the knowledge base is exactly the pre-run snapshot (same object)', async () => {
    await fc.assert(
      fc.asyncProperty(charmArb, factsArb, fc.array(fc.constantFrom(...EVENTS), { minLength: 1, maxLength: 6 }), async (models, initial, events) => {
        const trace: Trace = { violations: [], executions: [], activations: new Map() };
        const handlers = build(models, trace);
        let kb = (await runScenario({ handlers, facts: initial })).kb;
        for (const name of events) {
          const out = await runScenario({ handlers, kb, event: { kind: 'internal', name }, maxHandlerExecutions: 200 });
          if (!out.committed) {
            expect(out.kb).toBe(kb);
          }
          kb = out.kb;
        }
        expect(trace.violations).toEqual([]);
      }),
      { numRuns: 150 },
    );
  });

  it('the engine processes events in arrival order, each committed or skipped exactly once', async () => {
    await fc.assert(
      fc.asyncProperty(charmArb, fc.array(fc.constantFrom(...EVENTS), { minLength: 1, maxLength: 10 }), async (models, events) => {
        const trace: Trace = { violations: [], executions: [], activations: new Map() };
        const engine = new Engine({ handlers: build(models, trace), retry: { limit: 1 }, maxHandlerExecutions: 200 });
        const settled: number[] = [];
        const all = events.map((name, i) =>
          engine.submit({ kind: 'internal', name, payload: i }).then(
            (r) => {
              expect((r.event as { payload: number }).payload).toBe(i);
              settled.push(i);
            },
            () => settled.push(i),
          ),
        );
        // Skip whatever fails, as an operator would.
        for (let guard = 0; guard < 1000 && settled.length < events.length; guard++) {
          await new Promise((r) => setImmediate(r));
          if (engine.status().state === 'error') engine.skip();
        }
        await Promise.all(all);
        expect(settled).toEqual(events.map((_, i) => i));
        const committedOrder = engine.history().filter((r) => r.outcome === 'committed').map((r) => (r.event as { payload: number }).payload);
        expect(committedOrder).toEqual([...committedOrder].sort((a, b) => a - b));
        expect(trace.violations).toEqual([]);
      }),
      { numRuns: 100 },
    );
  });
});
