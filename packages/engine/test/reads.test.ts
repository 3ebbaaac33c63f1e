/**
 * Issue 13 item 6: a handler re-runs when anything it read through its
 * context changed (facts, key listings, relation state), not only the facts
 * named in its preconditions; retests look only at the handlers that read
 * what changed; the report's `because` names the read that changed.
 */
import { describe, expect, it } from 'vitest';
import { Engine, fact, event, type HandlerSpec, type Transaction } from '../src/index';
import { runScenario } from '../src/testing';

const ev = (name: string) => ({ kind: 'internal' as const, name });
const peerData = (units: Record<string, Record<string, string>>) => (tx: Transaction) => tx.updateRelationState('ensemble', () => ({ units }));

describe('handlers re-run on what they read', () => {
  it('a handler that renders relation data re-runs when a peer’s data arrives, and says why', async () => {
    const rendered: string[] = [];
    const handlers: HandlerSpec[] = [
      { name: 'install', atStartup: true, run: (ctx) => ctx.set('zookeeper.installed') },
      {
        name: 'render-zoo-cfg',
        when: fact('zookeeper.installed'),
        run: (ctx) => {
          const s = ctx.relationState('ensemble') as { units: Record<string, { host: string }> } | undefined;
          const hosts = Object.values(s?.units ?? {}).map((u) => u.host).sort();
          rendered.push(hosts.join(','));
          ctx.set('zoo.servers', hosts.length);
        },
      },
    ];
    const engine = new Engine({ handlers });
    await engine.start();
    expect(rendered).toEqual(['']);
    const report = await engine.submit(ev('relation.data'), { apply: peerData({ 'zk/1': { host: 'h1' } }) });
    expect(rendered).toEqual(['', 'h1']);
    const step = report.steps.find((s) => s.handler === 'render-zoo-cfg')!;
    expect(step.because).toContain('relation ensemble changed');
    // A second peer: rendered again; an unrelated fact: not.
    await engine.submit(ev('relation.data'), { apply: peerData({ 'zk/1': { host: 'h1' }, 'zk/2': { host: 'h2' } }) });
    await engine.submit(ev('other'), { apply: (tx) => tx.set('unrelated', 1) });
    expect(rendered).toEqual(['', 'h1', 'h1,h2']);
  });

  it('a fact read with ctx.get (not in the preconditions) re-queues the handler; the report names it', async () => {
    const seen: unknown[] = [];
    const handlers: HandlerSpec[] = [
      { name: 'configure', when: fact('installed'), run: (ctx) => void seen.push(ctx.get('config.port') ?? null) },
    ];
    const first = await runScenario({ handlers, facts: { installed: true } });
    expect(seen).toEqual([null]);
    const second = await runScenario({ handlers, kb: first.kb, event: ev('config.changed'), apply: (tx) => tx.set('config.port', 8080) });
    expect(seen).toEqual([null, 8080]);
    expect(second.report.steps[0]!.because).toEqual(['installed', 'config.port changed']);
    // Setting the same value again is not a change: nothing runs.
    const third = await runScenario({ handlers, kb: second.kb, event: ev('config.changed'), apply: (tx) => tx.set('config.port', 8080) });
    expect(third.report.steps).toEqual([]);
  });

  it('ctx.keys(prefix) re-queues on keys added or removed under the prefix, not on value changes or other prefixes', async () => {
    const listings: string[][] = [];
    const handlers: HandlerSpec[] = [{ name: 'list-peers', when: fact('ready'), run: (ctx) => void listings.push(ctx.keys('peers')) }];
    let out = await runScenario({ handlers, facts: { ready: true, 'peers.a': 1 } });
    const step = async (apply: (tx: Transaction) => void) => {
      out = await runScenario({ handlers, kb: out.kb, event: ev('change'), apply });
      return out.report.steps.map((s) => s.because);
    };
    expect(await step((tx) => tx.set('peers.a', 2))).toEqual([]); // value only
    expect(await step((tx) => tx.set('peersx.b', 1))).toEqual([]); // another prefix
    expect(await step((tx) => tx.set('peers.b.c', 1))).toEqual([['ready', "keys('peers') changed"]]);
    expect(await step((tx) => tx.clear('peers.a'))).toEqual([['ready', "keys('peers') changed"]]);
    expect(listings).toEqual([['peers.a'], ['peers.a', 'peers.b.c'], ['peers.b.c']]);
  });

  it('within one run: a handler re-runs when a later handler changes what it read', async () => {
    const handlers: HandlerSpec[] = [
      { name: 'reader', when: fact('on'), run: (ctx) => ctx.set('copy', ctx.get('source') ?? null) },
      { name: 'writer', when: event('go'), priority: -1, run: (ctx) => ctx.set('source', 'late') },
    ];
    const out = await runScenario({ handlers, facts: { on: true } }); // start: reader runs once
    expect(out.report.steps.map((s) => s.handler)).toEqual(['reader']);
    const again = await runScenario({ handlers, kb: out.kb, event: ev('go'), apply: (tx) => tx.set('source', 'early') });
    expect(again.report.steps.map((s) => s.handler)).toEqual(['reader', 'writer', 'reader']);
    expect(again.facts['copy']).toBe('late');
  });

  it('reads survive a restart: the engine rebuilds its read index from the knowledge base', async () => {
    const runs: number[] = [];
    const handlers: HandlerSpec[] = [{ name: 'h', when: fact('on'), run: (ctx) => void runs.push((ctx.get<number>('n') ?? 0)) }];
    const first = new Engine({ handlers, initial: (await runScenario({ handlers: [], facts: { on: true } })).kb });
    await first.start();
    const second = new Engine({ handlers, initial: first.knowledge });
    await second.start();
    expect(runs).toEqual([0]); // nothing it read changed
    await second.submit(ev('x'), { apply: (tx) => tx.set('n', 5) });
    expect(runs).toEqual([0, 5]);
  });

  it('retest cost follows what changed: with 5,000 handlers, changing one read fact evaluates one precondition', async () => {
    let evaluations = 0;
    const on = fact('on', (v) => (evaluations++, v === true), 'on');
    const handlers: HandlerSpec[] = [];
    for (let i = 0; i < 5000; i++) handlers.push({ name: `h${i}`, when: on, run: (ctx) => void ctx.get(`input.${i}`) });
    const engine = new Engine({ handlers, initial: (await runScenario({ handlers: [], facts: { on: true } })).kb });
    await engine.start();
    evaluations = 0;
    const report = await engine.submit(ev('x'), { apply: (tx) => tx.set('input.4321', 1) });
    expect(report.steps.map((s) => s.handler)).toEqual(['h4321']);
    expect(evaluations).toBeLessThanOrEqual(3); // dueness check and the report's explanation of that one handler
  });
});
