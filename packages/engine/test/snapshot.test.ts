import { pack, unpack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { Engine, event, factsOf, replayPatches, reviveKnowledgeBase, type RunCommit } from '../src/index';

describe('snapshots and replay', () => {
  it('a snapshot round-trips through msgpack and the logged patches replay to the live state', async () => {
    const commits: RunCommit[] = [];
    const engine = new Engine({
      handlers: [
        { name: 'w', when: event('w'), run: (ctx) => { const p = ctx.event!.payload as { k: string; v: number }; ctx.set(p.k, p.v); } },
        { name: 'c', when: event('c'), run: (ctx) => ctx.clear(ctx.event!.payload as string) },
      ],
      onCommit: (c) => void commits.push(c),
    });
    await engine.start();
    const snapshot = pack(engine.knowledge);
    const from = commits.length;
    for (let i = 0; i < 200; i++) await engine.submit({ kind: 'internal', name: 'w', payload: { k: `key.${i % 37}`, v: i } });
    for (let i = 0; i < 10; i++) await engine.submit({ kind: 'internal', name: 'c', payload: `key.${i}` });

    let kb = reviveKnowledgeBase(unpack(snapshot));
    for (const c of commits.slice(from)) kb = replayPatches(kb, unpack(pack(c.patches)));
    expect(factsOf(kb)).toEqual(factsOf(engine.knowledge));
    expect(kb).toEqual(engine.knowledge);
    expect(Object.isFrozen(kb.facts)).toBe(true);

    // The recovered knowledge base carries on: handler bookkeeping survived.
    const resumed = new Engine({ handlers: [], initial: kb });
    expect(factsOf(resumed.knowledge)).toEqual(factsOf(engine.knowledge));
  });

  it('refuses what is not a snapshot, and patches that do not apply', () => {
    expect(() => reviveKnowledgeBase({ facts: {}, versions: [], handlers: [], clock: 0, relations: {} })).toThrow(/facts must be an array/);
    expect(() => reviveKnowledgeBase('nope')).toThrow(/expected an object/);
    const kb = reviveKnowledgeBase(unpack(pack(new Engine({ handlers: [] }).knowledge)));
    expect(() => replayPatches(kb, [{ op: 'replace', path: ['facts', 99, 3, 'x'], value: 1 }])).toThrow(/does not apply/);
  });
});
