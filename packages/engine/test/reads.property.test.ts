/**
 * Property (issue 13 item 6): after every committed run, each fact-only
 * handler whose preconditions hold has seen the current value of everything
 * it read in its last execution: nothing it read changed without it
 * running again. Random charms: handlers read random facts through the
 * context and write a fact derived from them. Seeded: FC_SEED=<n> replays.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { event, fact, factsOf, not, type HandlerSpec, type Json, type KnowledgeBase } from '../src/index';
import { runScenario } from '../src/testing';

const KEYS = ['a', 'b', 'c', 'd', 'e'];
const EVENTS = ['e0', 'e1'];

interface Model {
  name: string;
  kind: 'facts' | 'event';
  pre: { key: string; negated: boolean } | undefined;
  reads: string[];
  writes: string;
  event: string;
}

const modelArb = fc.record({
  kind: fc.constantFrom('facts' as const, 'event' as const),
  pre: fc.option(fc.record({ key: fc.constantFrom(...KEYS), negated: fc.boolean() }), { nil: undefined }),
  reads: fc.uniqueArray(fc.constantFrom(...KEYS), { maxLength: 3 }),
  writes: fc.constantFrom(...KEYS),
  event: fc.constantFrom(...EVENTS),
});
const charmArb = fc
  .array(modelArb, { minLength: 1, maxLength: 6 })
  .map((ms) => ms.map((m, i): Model => ({ ...m, name: `h${i}`, reads: m.reads.filter((k) => k !== m.writes) })))
  // A fact-only handler needs a precondition.
  .map((ms) => ms.map((m) => (m.kind === 'facts' && m.pre === undefined ? { ...m, pre: { key: KEYS.find((k) => k !== m.writes)!, negated: false } } : m)));

function build(models: Model[], lastRead: Map<string, Map<string, Json | undefined>>): HandlerSpec[] {
  return models.map((m) => {
    const preP = m.pre ? (m.pre.negated ? not(fact(m.pre.key)) : fact(m.pre.key)) : undefined;
    const when = m.kind === 'event' ? [event(m.event), ...(preP ? [preP] : [])] : preP!;
    return {
      name: m.name,
      when,
      run: (ctx) => {
        const seen = new Map<string, Json | undefined>();
        for (const k of m.reads) seen.set(k, ctx.get(k));
        // Deterministic and bounded: the count of truthy reads, capped, so charms usually converge.
        const v = Math.min(2, [...seen.values()].filter((x) => x !== undefined && x !== false && x !== 0).length);
        ctx.set(m.writes, v);
        if (m.kind === 'facts') lastRead.set(m.name, seen);
      },
    };
  });
}

function holds(m: Model, facts: Record<string, Json>): boolean {
  if (!m.pre) return true;
  const v = facts[m.pre.key];
  const on = v !== undefined && v !== false;
  return m.pre.negated ? !on : on;
}

describe('handlers re-run when what they read changed (property)', () => {
  it('after each committed run, no fact-only handler whose preconditions hold has a stale read', async () => {
    const seed = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : Date.now() % 1_000_000;
    console.log(`reads property: FC_SEED=${seed}`);
    await fc.assert(
      fc.asyncProperty(charmArb, fc.array(fc.constantFrom(...EVENTS), { minLength: 1, maxLength: 5 }), async (models, events) => {
        const lastRead = new Map<string, Map<string, Json | undefined>>();
        const handlers = build(models, lastRead);
        let kb: KnowledgeBase | undefined;
        for (const name of [undefined, ...events]) {
          const out = await runScenario({ handlers, ...(kb ? { kb } : {}), ...(name ? { event: { kind: 'internal', name } } : {}), maxHandlerExecutions: 50 });
          if (!out.committed) return; // a cycle in the random charm: nothing to check
          kb = out.kb;
          const facts = factsOf(kb);
          for (const m of models) {
            if (m.kind !== 'facts' || !holds(m, facts)) continue;
            const seen = lastRead.get(m.name);
            expect(seen, `${m.name} holds but never ran`).toBeDefined();
            for (const [k, v] of seen!) expect(facts[k], `${m.name} read ${k}=${JSON.stringify(v)}, now ${JSON.stringify(facts[k])}`).toEqual(v);
          }
        }
      }),
      { numRuns: 300, seed },
    );
  });
});
