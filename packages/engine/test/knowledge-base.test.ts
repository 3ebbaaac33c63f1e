import { describe, expect, it } from 'vitest';
import { EngineError, getFact, fact, event, type HandlerContext } from '../src/index';
import { createKnowledgeBase, runScenario } from '../src/testing';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof EngineError ? e.code : `not an EngineError: ${String(e)}`;
  }
  return undefined;
}

describe('knowledge base input validation', () => {
  it.each([
    ['empty key', ''],
    ['padded key', ' a '],
    ['reserved prefix', '@rel/x'],
    ['over-long key', 'k'.repeat(300)],
  ])('rejects a %s', (_what, key) => {
    expect(codeOf(() => createKnowledgeBase({ facts: { [key]: true } }))).toBe('ENGINE_ERR_BAD_KEY');
  });

  it.each([
    ['a function', () => 1],
    ['undefined', undefined],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['a Date', new Date(0)],
    ['a nested function', { a: [1, { b: () => 2 }] }],
  ])('rejects %s as a value', (_what, value) => {
    expect(codeOf(() => createKnowledgeBase({ facts: { k: value } }))).toBe('ENGINE_ERR_NOT_JSON');
  });

  it('rejects cycles and names the path', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic['self'] = cyclic;
    try {
      createKnowledgeBase({ facts: { k: cyclic } });
      expect.unreachable();
    } catch (e) {
      expect((e as EngineError).code).toBe('ENGINE_ERR_NOT_JSON');
      expect((e as Error).message).toContain('cycle');
    }
  });

  it('accepts shared (non-cyclic) references and plain JSON', () => {
    const shared = { x: 1 };
    const kb = createKnowledgeBase({ facts: { a: { l: shared, r: shared }, b: [1, 'two', null, true], c: true } });
    expect(getFact(kb, 'a')).toEqual({ l: { x: 1 }, r: { x: 1 } });
    expect(Object.isFrozen(kb.facts)).toBe(true);
  });

  it('rejects bad keys and values at the call site inside a handler, failing that run', async () => {
    const bad: Array<[string, (ctx: HandlerContext) => void, string]> = [
      ['non-string key', (ctx) => ctx.set(42 as never, true), 'ENGINE_ERR_BAD_KEY'],
      ['empty key', (ctx) => ctx.set('', true), 'ENGINE_ERR_BAD_KEY'],
      ['function value', (ctx) => ctx.set('k', (() => 1) as never), 'ENGINE_ERR_NOT_JSON'],
      ['NaN value', (ctx) => ctx.set('k', Number.NaN), 'ENGINE_ERR_NOT_JSON'],
    ];
    for (const [, run] of bad) {
      const out = await runScenario({
        facts: { before: 1 },
        handlers: [{ name: 'bad', when: event('go'), run }],
        event: { kind: 'internal', name: 'go' },
      });
      expect(out.committed).toBe(false);
      expect(out.facts).toEqual({ before: 1 });
      expect(out.report.error?.handler).toBe('bad');
    }
    // The thrown error itself carries the code.
    let caught: unknown;
    await runScenario({
      handlers: [{ name: 'bad', when: event('go'), run: (ctx) => { try { ctx.set('k', undefined as never); } catch (e) { caught = e; } } }],
      event: { kind: 'internal', name: 'go' },
    });
    expect((caught as EngineError).code).toBe('ENGINE_ERR_NOT_JSON');
  });

  it('values read from the knowledge base cannot be mutated behind its back', async () => {
    const out = await runScenario({
      handlers: [
        {
          name: 'w',
          when: event('go'),
          run: (ctx) => {
            const v = { list: [1, 2] };
            ctx.set('obj', v);
            v.list.push(3); // the caller's copy, not the staged one
          },
        },
        { name: 'r', when: fact('obj'), run: (ctx) => { expect(() => (ctx.get<{ list: number[] }>('obj')!.list).push(4)).toThrow(); } },
      ],
      event: { kind: 'internal', name: 'go' },
    });
    expect(out.committed).toBe(true);
    expect(out.facts['obj']).toEqual({ list: [1, 2] });
  });
});
